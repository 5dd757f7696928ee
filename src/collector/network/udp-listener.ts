// UDP listeners: GELF (`gelf+udp`, datagrams plain or chunked, compressed or not), or one message per datagram in the
// source's parser (`udp`: syslog per RFC 5426, JSON, …). UDP cannot slow a sender down, so without credit a finished
// message is dropped and counted (`udpDroppedNoCredit`) while GELF chunks keep being reassembled (bounded).
// Datagrams that never reach us, because the socket's receive buffer was full while the collector was busy, are
// dropped by the kernel: on Linux its per-socket count is read from /proc/net/udp(6) (`udpKernelDrops`).
import { type RemoteInfo, type Socket, createSocket } from "node:dgram";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { endianness } from "node:os";
import { performance } from "node:perf_hooks";
import type { NetworkListenerSpec } from "../../sources/specs.js";
import { GelfChunkAssembler, isChunk, type ChunkLimits } from "./gelf-chunks.js";
import { type Intake, peerOf } from "./intake.js";
import { type BoundAddress, type Listener, type ListenerFailure, bindPreferred, boundAddress } from "./listener.js";

/** Ask the OS for room for bursts of chunks; Linux caps it at net.core.rmem_max without an error. */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

class UdpListener implements Listener {
  private readonly assembler: GelfChunkAssembler;
  /** The socket's local address as /proc/net/udp(6) spells it; undefined once reading it failed (not Linux). */
  private procKey: { file: string; local: string } | undefined;
  private readingDrops = false;

  constructor(
    private readonly socket: Socket,
    readonly bound: BoundAddress,
    private readonly intake: Intake,
    limits: ChunkLimits,
    onFailure: ListenerFailure,
    /** `udp://`: each datagram is a message in the source's parser, not GELF. */
    private readonly lines: boolean,
  ) {
    this.assembler = new GelfChunkAssembler(limits, intake.counters);
    this.procKey = procNetKey(bound.address, bound.port);
    socket.on("message", this.onMessage);
    socket.on("error", (error) => onFailure(`${bound.url}: ${error.message}`));
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    const c = this.intake.counters;
    c.datagrams++;
    c.bytesRead += msg.length;
    let payload: Buffer | undefined = msg;
    if (!this.lines && isChunk(msg)) {
      // A monotonic clock: a wall clock stepped back (NTP, a VM resumed) would keep chunks far past their time.
      payload = this.assembler.add(msg, rinfo.address, performance.now());
      if (payload === undefined) return;
    }
    if (!this.intake.hasUdpCredit) {
      c.linesRead++;
      c.udpDroppedNoCredit++;
      return;
    }
    this.intake.stamp();
    if (this.lines) this.intake.datagram(payload, peerOf(rinfo.address, rinfo.port));
    else this.intake.gelf(payload, peerOf(rinfo.address, rinfo.port));
  };

  pause(): void {}
  resume(): void {}

  /** Every second, with `performance.now()`. */
  tick(now: number): void {
    this.assembler.sweep(now);
    void this.readKernelDrops();
  }

  /** The kernel's drop count for this socket (cumulative over its life, so it is assigned, not added). */
  private async readKernelDrops(): Promise<void> {
    const key = this.procKey;
    if (key === undefined || this.readingDrops) return;
    this.readingDrops = true;
    try {
      const drops = kernelDrops(await readFile(key.file, "latin1"), key.local);
      if (drops !== undefined) this.intake.counters.udpKernelDrops = drops;
    } catch {
      this.procKey = undefined; // no /proc: not Linux, or hidden; the counter stays 0
    } finally {
      this.readingDrops = false;
    }
  }

  close(): Promise<void> {
    this.procKey = undefined;
    this.assembler.clear();
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }
}

export async function listenUdp(spec: NetworkListenerSpec, intake: Intake, limits: ChunkLimits, onFailure: ListenerFailure): Promise<Listener> {
  const socket = await bindPreferred(
    spec,
    (port) =>
      new Promise<Socket>((resolve, reject) => {
        const s = createSocket({ type: isIP(spec.host) === 6 ? "udp6" : "udp4" });
        s.once("error", (error) => {
          s.close();
          reject(error);
        });
        s.bind(port, spec.host, () => {
          s.removeAllListeners("error");
          resolve(s);
        });
      }),
  );
  try {
    socket.setRecvBufferSize(RECV_BUFFER_BYTES);
  } catch {
    // not permitted: the default buffer still works, bursts may lose datagrams in the kernel
  }
  const a = socket.address();
  return new UdpListener(socket, boundAddress(spec, a.address, a.port), intake, limits, onFailure, spec.protocol === "udp");
}

/**
 * Where a UDP socket bound to `address:port` appears in /proc/net: the file (udp or udp6) and its `local_address`
 * column: the address as the kernel's 32-bit words printed in hex (so byte-swapped on little-endian machines), a
 * colon, the port in hex.
 */
export function procNetKey(address: string, port: number, little = endianness() === "LE"): { file: string; local: string } | undefined {
  const family = isIP(address);
  if (family === 0) return undefined;
  const bytes = family === 4 ? address.split(".").map(Number) : ipv6Bytes(address);
  if (bytes === undefined) return undefined;
  let hex = "";
  for (let i = 0; i < bytes.length; i += 4) {
    const word = bytes.slice(i, i + 4);
    if (little) word.reverse();
    for (const b of word) hex += b.toString(16).padStart(2, "0");
  }
  return { file: family === 4 ? "/proc/net/udp" : "/proc/net/udp6", local: `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, "0")}` };
}

function ipv6Bytes(address: string): number[] | undefined {
  let a = address;
  const pct = a.indexOf("%");
  if (pct !== -1) a = a.slice(0, pct);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4 !== null) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number) as [number, number, number, number];
    a = a.slice(0, v4.index) + ((b0 << 8) | b1).toString(16) + ":" + ((b2 << 8) | b3).toString(16);
  }
  const [head, tail] = a.includes("::") ? a.split("::") : [a, undefined];
  const h = head === "" || head === undefined ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) return undefined;
  const out: number[] = [];
  for (const g of groups) {
    const v = Number.parseInt(g, 16);
    out.push(v >> 8, v & 0xff);
  }
  return out;
}

/** The `drops` column (the last) of the line whose local_address is `local`, or undefined when there is none. */
export function kernelDrops(table: string, local: string): number | undefined {
  for (const line of table.split("\n")) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local) {
      const drops = Number(cols[cols.length - 1]);
      return Number.isSafeInteger(drops) ? drops : undefined;
    }
  }
  return undefined;
}
