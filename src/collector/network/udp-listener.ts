// GELF over UDP: datagrams, plain or chunked, compressed or not. UDP cannot slow a sender down, so without credit a
// finished message is dropped and counted (`udpDroppedNoCredit`) while chunks keep being reassembled (bounded).
import { type RemoteInfo, type Socket, createSocket } from "node:dgram";
import { isIP } from "node:net";
import type { NetworkListenerSpec } from "../../sources/specs.js";
import { GelfChunkAssembler, isChunk, type ChunkLimits } from "./gelf-chunks.js";
import { type Intake, peerOf } from "./intake.js";
import { type BoundAddress, type Listener, type ListenerFailure, bindPreferred, boundAddress } from "./listener.js";

/** Ask the OS for room for bursts of chunks; Linux caps it at net.core.rmem_max without an error. */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

class UdpListener implements Listener {
  private readonly assembler: GelfChunkAssembler;

  constructor(
    private readonly socket: Socket,
    readonly bound: BoundAddress,
    private readonly intake: Intake,
    limits: ChunkLimits,
    onFailure: ListenerFailure,
  ) {
    this.assembler = new GelfChunkAssembler(limits, intake.counters);
    socket.on("message", this.onMessage);
    socket.on("error", (error) => onFailure(`${bound.url}: ${error.message}`));
  }

  private readonly onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
    const c = this.intake.counters;
    c.datagrams++;
    c.bytesRead += msg.length;
    let payload: Buffer | undefined = msg;
    if (isChunk(msg)) {
      payload = this.assembler.add(msg, rinfo.address, Date.now());
      if (payload === undefined) return;
    }
    if (!this.intake.hasCredit) {
      c.linesRead++;
      c.udpDroppedNoCredit++;
      return;
    }
    this.intake.stamp();
    this.intake.gelf(payload, peerOf(rinfo.address, rinfo.port));
  };

  pause(): void {}
  resume(): void {}

  tick(now: number): void {
    this.assembler.sweep(now);
  }

  close(): Promise<void> {
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
  return new UdpListener(socket, boundAddress(spec, a.address, a.port), intake, limits, onFailure);
}
