// TCP and TLS listeners: GELF frames (`gelf+tcp`, `gelf+tls`) or lines (`tcp`, `tls`). Out of credit, every
// connection stops being read, so the kernel buffers fill and senders block in write(): backpressure end to end.
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
    const decoder = this.gelf ? new FrameDecoder(this.limits.maxBytes, intake, peer) : new LineDecoder(this.limits.maxBytes, intake, peer);
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
