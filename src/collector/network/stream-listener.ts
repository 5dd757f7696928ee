// TCP and TLS listeners: GELF frames (`gelf+tcp`, `gelf+tls`) or lines (`tcp`, `tls`); with the syslog parser, a
// connection whose first byte is a digit is read with octet counting instead (RFC 6587 3.4.1, the framing RFC 5425
// prescribes over TLS). Out of credit, every connection stops being read, so the kernel buffers fill and senders
// block in write(): backpressure end to end.
//
//   socket ─data─▶ slices (≤ 64 messages) ─▶ decoder ─▶ Intake ─▶ channel
//                    │ out of credit mid-read: the rest goes back into the socket (unshift), every socket pauses,
//                    │ and idle timers stop (the wait is ours, not the sender's); credit resumes them
//                    └ partial message held ─▶ charged to a budget shared by every TCP/TLS connection of the collector
//
// What bounds a connection: `idleTimeoutMs` without a byte closes it (counted), a partial message that would take
// the shared budget over `maxPartialBytes` closes it (counted), and TLS handshakes time out (listener.ts). A partial
// message discarded because its connection did not end cleanly (reset, timeout, budget, stop) is counted.
import { type Server, type Socket, createServer as createTcpServer } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { isUtf8 } from "node:buffer";
import type { NetworkListenerSpec, NetworkSpec } from "../../sources/specs.js";
import { LineFlags, LineSplitter } from "../line-splitter.js";
import { FrameSplitter } from "./frame-splitter.js";
import { type Intake, type Peer, peerOf } from "./intake.js";
import { type BoundAddress, type Listener, type ListenerFailure, closeServer, listenServer, tlsServerOptions } from "./listener.js";
import { defaultStreamMessageBytes } from "./limits.js";
import { feedSlices } from "./slices.js";

/** Keep-alive probes find peers that vanished without a FIN (a rebooted sender), so their sockets are freed. */
const KEEPALIVE_MS = 60_000;

/** Bytes of partial messages held by all TCP/TLS connections of one collector, against `maxPartialBytes`. */
export class PartialBudget {
  used = 0;
  constructor(readonly max: number) {}
}

/** A connection's framing: lines or GELF frames, with what it holds of a message not yet ended. */
interface Decoder {
  push(chunk: Buffer): void;
  /** Clean end of stream: an unterminated tail is a last message. */
  flush(): void;
  /** Bytes held for the message not yet ended. */
  readonly pendingBytes: number;
  /** A message has begun and not ended, and was not already counted as oversized. */
  readonly hasPartial: boolean;
}

/** JSON lines, with an overlong line counted when it goes over the limit rather than at its newline. */
class LineDecoder implements Decoder {
  private readonly splitter: LineSplitter;
  /** The pending line went over the limit and is counted; its TRUNCATED remnant is dropped silently. */
  private cut = false;

  constructor(
    private readonly maxBytes: number,
    private readonly intake: Intake,
    peer: Peer,
  ) {
    this.splitter = new LineSplitter({ maxLineBytes: maxBytes, overlong: "truncate", lazyText: intake.lazyLines }, (line, _s, _e, flags, bytes, bs, be) => {
      if ((flags & LineFlags.TRUNCATED) !== 0 && this.cut) {
        this.cut = false;
        return;
      }
      intake.line(line, flags, peer, bytes, bs, be);
    });
  }

  push(chunk: Buffer): void {
    this.splitter.push(chunk);
    // Bytes since the last line ended: over the limit means the splitter is now skipping to the newline.
    if (!this.cut && this.splitter.position - this.splitter.offset > this.maxBytes) {
      this.cut = true;
      this.intake.oversized();
    }
  }

  flush(): void {
    this.splitter.flush();
    this.cut = false;
  }

  get pendingBytes(): number {
    return this.splitter.pendingBytes;
  }

  get hasPartial(): boolean {
    return this.splitter.hasPending && !this.cut;
  }
}

/** GELF frames (NUL or newline), an oversized one counted when it goes over the limit (FrameSplitter does). */
class FrameDecoder implements Decoder {
  private readonly frames: FrameSplitter;

  constructor(maxBytes: number, intake: Intake, peer: Peer) {
    this.frames = new FrameSplitter(maxBytes, (frame) => intake.gelf(frame, peer), () => {
      intake.counters.linesRead++;
      intake.counters.gelfTooLarge++;
    });
  }

  push(chunk: Buffer): void {
    this.frames.push(chunk);
  }

  flush(): void {
    this.frames.flush();
  }

  get pendingBytes(): number {
    return this.frames.pendingBytes;
  }

  get hasPartial(): boolean {
    return this.frames.hasPending && !this.frames.discardingOversized;
  }
}

/**
 * Syslog with octet counting: `MSG-LEN SP SYSLOG-MSG`, one frame after another. Frames are taken whole while `go()`
 * holds, checked before each one, so a connection stops at the frame where credit ran out (no slices needed: there
 * are no delimiters to cut at). A frame over `maxBytes` is skipped as it streams by (counted), never held. A frame
 * that does not start with its length is a framing error: the stream cannot be resynchronized.
 */
class OctetCountingDecoder {
  /** Bytes of the current frame still to come; -1 while its length is read. */
  private need = -1;
  private length = 0;
  private digits = 0;
  private parts: Buffer[] = [];
  private held = 0;
  /** The current frame is over the limit: its bytes are skipped. */
  private skipping = false;

  constructor(
    private readonly maxBytes: number,
    private readonly intake: Intake,
    private readonly peer: Peer,
  ) {}

  /** Decode frames from `chunk` while `go()` holds; returns the bytes consumed, or -1 on a framing error. */
  take(chunk: Buffer, go: () => boolean): number {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.need < 0) {
        const c = chunk[i]!;
        if (this.digits === 0) {
          // Some senders end each frame with a newline anyway: between frames, it is not a frame.
          if (c === 10 || c === 13) {
            i++;
            continue;
          }
          if (!go()) return i;
        }
        if (c >= 48 && c <= 57 && !(this.digits === 0 && c === 48) && this.digits < 10) {
          this.length = this.length * 10 + (c - 48);
          this.digits++;
          i++;
          continue;
        }
        if (c !== 32 || this.digits === 0) return -1;
        i++;
        this.need = this.length;
        this.length = 0;
        this.digits = 0;
        if (this.need > this.maxBytes) {
          this.skipping = true;
          this.intake.oversized();
        }
        if (this.need === 0) this.end();
        continue;
      }
      const take = Math.min(this.need, n - i);
      if (!this.skipping) {
        this.parts.push(chunk.subarray(i, i + take));
        this.held += take;
      }
      i += take;
      this.need -= take;
      if (this.need === 0) this.end();
    }
    return n;
  }

  /** The current frame is complete: ship it (a trailing newline inside the count is not part of the message). */
  private end(): void {
    this.need = -1;
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    const frame = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.held);
    this.parts = [];
    this.held = 0;
    let end = frame.length;
    while (end > 0 && frame[end - 1] === 10) end--;
    const body = frame.subarray(0, end);
    this.intake.line(body.toString("utf8"), isUtf8(body) ? 0 : LineFlags.INVALID_UTF8, this.peer);
  }

  get pendingBytes(): number {
    return this.held;
  }

  /** A frame (or its length) has begun and not ended; an oversized one is already counted. */
  get hasPartial(): boolean {
    return this.digits > 0 || (this.need >= 0 && !this.skipping);
  }
}

/**
 * A syslog connection: octet counting when its first byte is a digit (a frame length), newline framing otherwise
 * (a frame starts with `<`, or a line of a syslog file). One framing per connection, as senders use.
 */
class SyslogDecoder implements Decoder {
  private mode: "octets" | "lines" | undefined;
  private readonly lines: LineDecoder;
  private readonly octets: OctetCountingDecoder;

  constructor(maxBytes: number, intake: Intake, peer: Peer) {
    this.lines = new LineDecoder(maxBytes, intake, peer);
    this.octets = new OctetCountingDecoder(maxBytes, intake, peer);
  }

  /** Whether this connection is octet-counted (decided by its first byte). */
  counted(chunk: Buffer): boolean {
    if (this.mode === undefined && chunk.length > 0) this.mode = chunk[0]! >= 49 && chunk[0]! <= 57 ? "octets" : "lines";
    return this.mode === "octets";
  }

  take(chunk: Buffer, go: () => boolean): number {
    return this.octets.take(chunk, go);
  }

  push(chunk: Buffer): void {
    this.lines.push(chunk);
  }

  flush(): void {
    // An octet-counted frame cut short by the end of the stream cannot be completed: it stays partial (counted
    // as discarded when the connection closes).
    if (this.mode !== "octets") this.lines.flush();
  }

  get pendingBytes(): number {
    return this.mode === "octets" ? this.octets.pendingBytes : this.lines.pendingBytes;
  }

  get hasPartial(): boolean {
    return this.mode === "octets" ? this.octets.hasPartial : this.lines.hasPartial;
  }
}

interface Connection {
  readonly socket: Socket;
  readonly decoder: Decoder;
  /** Bytes of the budget this connection holds (its decoder's pending bytes when last charged). */
  held: number;
  /** Its partial message was counted as discarded (or it needs no counting any more). */
  settled: boolean;
}

export interface StreamLimits {
  maxBytes: number;
  idleTimeoutMs: number;
  budget: PartialBudget;
}

class StreamListener implements Listener {
  private readonly conns = new Set<Connection>();
  private paused = false;

  constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly bound: BoundAddress,
    private readonly intake: Intake,
    private readonly limits: StreamLimits,
    private readonly gelf: boolean,
    onFailure: ListenerFailure,
  ) {
    server.on("error", (error) => onFailure(`${bound.url}: ${error.message}`));
  }

  adopt(socket: Socket): void {
    const intake = this.intake;
    const counters = intake.counters;
    counters.connections++;
    const peer = peerOf(socket.remoteAddress, socket.remotePort);
    const max = this.limits.maxBytes;
    const decoder = this.gelf ? new FrameDecoder(max, intake, peer) : intake.syslog ? new SyslogDecoder(max, intake, peer) : new LineDecoder(max, intake, peer);
    const c: Connection = { socket, decoder, held: 0, settled: false };
    this.conns.add(c);
    socket.setKeepAlive(true, KEEPALIVE_MS);
    socket.on("timeout", () => {
      counters.idleTimeouts++;
      socket.destroy();
    });
    socket.on("data", (chunk: Buffer) => this.onData(c, chunk));
    socket.on("end", () => {
      intake.stamp();
      decoder.flush();
      this.charge(c);
    });
    socket.on("error", () => {
      counters.connectionErrors++;
    });
    socket.on("close", () => {
      this.conns.delete(c);
      this.discard(c);
      this.limits.budget.used -= c.held;
      c.held = 0;
    });
    if (this.paused) socket.pause();
    else socket.setTimeout(this.limits.idleTimeoutMs);
  }

  private onData(c: Connection, chunk: Buffer): void {
    const intake = this.intake;
    intake.stamp();
    if (c.decoder instanceof SyslogDecoder && c.decoder.counted(chunk)) {
      this.onFrames(c, c.decoder, chunk);
      return;
    }
    let closed = false;
    const at = feedSlices(
      chunk,
      0,
      this.gelf,
      (slice) => {
        intake.counters.bytesRead += slice.length;
        c.decoder.push(slice);
        closed = !this.charge(c);
      },
      () => !closed && !this.paused && intake.hasCredit,
      intake.slices,
    );
    // Out of credit within this read: the rest waits in the socket, unread, and comes back as the next 'data' on
    // resume, before anything read later (and before 'end'). Every socket is paused by now, and if credit ran out
    // other than by a push here, they are paused now: an unpaused socket would hand the rest straight back, forever.
    if (at < chunk.length && !closed) {
      if (!this.paused) intake.outOfCredit();
      c.socket.unshift(chunk.subarray(at));
    }
  }

  /** Octet-counted syslog: frames are taken whole while credit lasts; the rest goes back into the socket. */
  private onFrames(c: Connection, decoder: SyslogDecoder, chunk: Buffer): void {
    const intake = this.intake;
    const at = decoder.take(chunk, () => !this.paused && intake.hasCredit);
    if (at < 0) {
      intake.counters.bytesRead += chunk.length;
      intake.counters.framingErrors++;
      c.socket.destroy();
      return;
    }
    intake.counters.bytesRead += at;
    if (!this.charge(c)) return;
    if (at < chunk.length) {
      if (!this.paused) intake.outOfCredit();
      c.socket.unshift(chunk.subarray(at));
    }
  }

  /** Charge the connection's partial message to the shared budget; over it, close the connection (false). */
  private charge(c: Connection): boolean {
    const now = c.decoder.pendingBytes;
    const budget = this.limits.budget;
    budget.used += now - c.held;
    const grew = now > c.held;
    c.held = now;
    if (grew && budget.used > budget.max) {
      this.intake.counters.partialOverBudget++;
      this.discard(c);
      c.socket.destroy();
      return false;
    }
    return true;
  }

  /** The connection is going away: a partial message it held is lost, counted once. */
  private discard(c: Connection): void {
    if (c.settled) return;
    c.settled = true;
    if (c.decoder.hasPartial) this.intake.counters.partialDiscarded++;
  }

  pause(): void {
    this.paused = true;
    for (const c of this.conns) {
      c.socket.pause();
      c.socket.setTimeout(0);
    }
  }

  resume(): void {
    this.paused = false;
    for (const c of this.conns) {
      c.socket.setTimeout(this.limits.idleTimeoutMs);
      c.socket.resume();
    }
  }

  close(): Promise<void> {
    for (const c of this.conns) this.discard(c);
    // What was read is already pushed; a partial frame or line in a decoder is the sender's to resend (counted).
    return closeServer(this.server, this.sockets);
  }
}

export async function listenStream(
  spec: NetworkListenerSpec,
  network: Pick<NetworkSpec, "maxMessageBytes" | "maxConnections" | "tls" | "idleTimeoutMs">,
  intake: Intake,
  budget: PartialBudget,
  onFailure: ListenerFailure,
): Promise<Listener> {
  const gelf = spec.protocol === "gelf+tcp" || spec.protocol === "gelf+tls";
  const secure = spec.protocol === "gelf+tls" || spec.protocol === "tls";
  const tlsOptions = secure ? await tlsServerOptions(network.tls) : undefined;
  const limits: StreamLimits = {
    maxBytes: network.maxMessageBytes ?? defaultStreamMessageBytes(spec.protocol),
    idleTimeoutMs: network.idleTimeoutMs,
    budget,
  };
  let listener: StreamListener | undefined;
  const onConnection = (socket: Socket): void => {
    if (listener === undefined) socket.destroy();
    else listener.adopt(socket);
  };
  const { server, bound, sockets } = await listenServer(
    spec,
    network,
    () => (tlsOptions === undefined ? createTcpServer(onConnection) : createTlsServer(tlsOptions, onConnection)),
    intake.counters,
    tlsOptions !== undefined,
  );
  listener = new StreamListener(server, sockets, bound, intake, limits, gelf, onFailure);
  return listener;
}
