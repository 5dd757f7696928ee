// One persistent TCP/TLS connection for stream protocols (GELF TCP, Logstash json_lines) that knows which bytes left.
//
//   send(segments) ──► [connect? (backoff gate)] ──► write seg 0, seg 1, … (pause on `false` until `drain`)
//                                                     │ write callbacks, in order: flushed += seg.records
//                                                     ▼
//   error / peer FIN / stall timeout / abort ──► destroy socket; report `flushed` records delivered, the rest retry
//
// TCP has no acknowledgements: "delivered" means the bytes were handed to the kernel (write callback fired).
// That is the strongest signal these protocols offer; a receiver that crashes with unread kernel buffers can still
// lose data, a receiver that shuts down (FIN) and reads what it already accepted loses nothing we reported.
import * as net from "node:net";
import * as tls from "node:tls";
import { SinkError } from "../../errors.js";
import type { SinkStats } from "../stats.js";
import type { ResolvedReconnect } from "./options.js";
import { isTlsError, tlsError } from "./tls.js";

/** A slice of the outgoing stream made of whole records (framing included). */
export interface StreamSegment {
  readonly data: string | Buffer;
  readonly records: number;
}

export interface StreamWriteResult {
  /** Records (counted from the first segment) whose bytes all reached the kernel. */
  readonly flushed: number;
  /** Set when not every record was flushed. */
  readonly error?: SinkError;
  /** Stable short reason for the retry outcome of the unflushed records. */
  readonly reason?: string;
  /** Earliest useful retry (the reconnect backoff), when known. */
  readonly retryAfterMs?: number;
}

export interface StreamConnectionOptions {
  sink: string;
  /** URL without credentials, for messages. */
  display: string;
  host: string;
  port: number;
  /** node:tls options; undefined = plain TCP. */
  tls: tls.ConnectionOptions | undefined;
  connectTimeoutMs: number;
  /** A write that makes no progress for this long kills the connection. */
  writeTimeoutMs: number;
  reconnect: ResolvedReconnect;
  stats: SinkStats;
}

// How long to wait, after a TLS 1.3 handshake, for the server's session ticket. In TLS 1.3 the client finishes the
// handshake before the server has checked the client certificate; a server that rejects it sends an alert instead of
// tickets. Without this wait the first writes would "succeed" and then vanish. Servers that send no tickets cost this
// delay once per connection.
const TLS13_CONFIRM_MS = 1000;

interface WriteState {
  readonly socket: net.Socket;
  readonly segments: readonly StreamSegment[];
  done: number;
  flushed: number;
  needDrain: boolean;
  failure: { error: unknown; reason: string } | undefined;
  finished: boolean;
}

export class StreamConnection {
  private socket: net.Socket | undefined;
  private failures = 0;
  private nextConnectAt = 0;
  private lastFailure: { error: SinkError; reason: string } | undefined;
  private state: WriteState | undefined;
  private waiter: (() => void) | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  private connectedBefore = false;
  private closed = false;

  constructor(private readonly o: StreamConnectionOptions) {}

  /** Connect now (used by `open()`): throws the coded error of a failed attempt. */
  async open(signal: AbortSignal): Promise<void> {
    await this.serialized(async () => {
      if (this.socket !== undefined) return;
      try {
        this.adopt(await this.connect(signal));
      } catch (error) {
        const f = this.classify(error, "connect");
        this.noteConnectFailure(f);
        throw f.error;
      }
    });
  }

  /** Write the segments in order; never throws. */
  write(segments: readonly StreamSegment[], signal: AbortSignal): Promise<StreamWriteResult> {
    return this.serialized(() => this.doWrite(segments, signal));
  }

  /** End the connection cleanly (FIN after the kernel sent what it holds), destroying it if that takes too long. */
  async close(): Promise<void> {
    this.closed = true;
    await this.lock.catch(() => undefined);
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), this.o.connectTimeoutMs);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async doWrite(segments: readonly StreamSegment[], signal: AbortSignal): Promise<StreamWriteResult> {
    if (this.closed) {
      return { flushed: 0, reason: "closed", error: new SinkError("ERR_INVALID_STATE", "The sink is closed", { sink: this.o.sink }) };
    }
    if (signal.aborted) return { flushed: 0, reason: "aborted", error: this.abortError() };
    if (segments.length === 0) return { flushed: 0 };
    let socket = this.socket;
    if (socket === undefined) {
      const wait = this.nextConnectAt - Date.now();
      if (wait > 0 && this.lastFailure !== undefined) {
        return { flushed: 0, reason: this.lastFailure.reason, error: this.lastFailure.error, retryAfterMs: wait };
      }
      try {
        socket = await this.connect(signal);
        this.adopt(socket);
      } catch (error) {
        const f = this.classify(error, "connect");
        const delay = this.noteConnectFailure(f);
        return { flushed: 0, reason: f.reason, error: f.error, retryAfterMs: delay };
      }
    }

    const st: WriteState = { socket, segments, done: 0, flushed: 0, needDrain: false, failure: undefined, finished: false };
    this.state = st;
    const started = performance.now();
    let bytes = 0;
    const onWritten = (err?: Error | null): void => {
      if (st.finished) return;
      if (err) st.failure ??= { error: err, reason: "connection_error" };
      else if (st.failure === undefined) st.flushed += st.segments[st.done]!.records;
      st.done++;
      timer.refresh();
      this.wake();
    };
    const timer = setTimeout(() => {
      st.failure ??= {
        error: new SinkError("ERR_SINK_TIMEOUT", `Writing to ${this.o.display} made no progress for ${this.o.writeTimeoutMs} ms`, { sink: this.o.sink }),
        reason: "write_timeout",
      };
      socket.destroy();
      this.wake();
    }, this.o.writeTimeoutMs);
    const onAbort = (): void => {
      st.failure ??= { error: this.abortError(), reason: "aborted" };
      socket.destroy();
      this.wake();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      let next = 0;
      for (;;) {
        if (st.done === segments.length) break;
        if (st.failure !== undefined) break;
        if (next < segments.length && !st.needDrain) {
          const seg = segments[next++]!;
          bytes += typeof seg.data === "string" ? Buffer.byteLength(seg.data) : seg.data.length;
          if (!socket.write(seg.data, onWritten)) st.needDrain = true;
          continue;
        }
        await new Promise<void>((resolve) => (this.waiter = resolve));
        this.waiter = undefined;
      }
    } finally {
      st.finished = true;
      this.state = undefined;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
    const latency = performance.now() - started;
    if (st.done === segments.length && st.failure === undefined) {
      this.o.stats.request("ok", bytes, latency);
      return { flushed: st.flushed };
    }
    this.o.stats.request("error", bytes, latency);
    this.o.stats.error();
    this.drop(socket);
    const f = this.classify(st.failure!.error, st.failure!.reason);
    return { flushed: st.flushed, reason: f.reason, error: f.error };
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private adopt(socket: net.Socket): void {
    if (this.connectedBefore) this.o.stats.reconnects++;
    this.connectedBefore = true;
    this.failures = 0;
    this.lastFailure = undefined;
    this.socket = socket;
    const fail = (error: unknown, reason: string): void => {
      const st = this.state;
      if (st !== undefined && st.socket === socket) st.failure ??= { error, reason };
      this.drop(socket);
      this.wake();
    };
    socket.on("error", (err) => fail(err, "connection_error"));
    socket.on("close", () =>
      fail(new SinkError("ERR_SINK_SEND", `Connection to ${this.o.display} closed`, { sink: this.o.sink }), "connection_closed"),
    );
    // The peer closing its side (FIN) means it is going away: stop writing into a socket it will not read for long.
    socket.on("end", () =>
      fail(new SinkError("ERR_SINK_SEND", `${this.o.display} closed the connection`, { sink: this.o.sink }), "connection_closed"),
    );
    socket.on("drain", () => {
      const st = this.state;
      if (st !== undefined && st.socket === socket) st.needDrain = false;
      this.wake();
    });
    // These protocols never answer; read and discard so that a FIN is noticed.
    socket.resume();
  }

  private drop(socket: net.Socket): void {
    if (this.socket === socket) this.socket = undefined;
    socket.destroy();
  }

  private noteConnectFailure(f: { error: SinkError; reason: string }): number {
    this.failures++;
    const { initialDelayMs, maxDelayMs } = this.o.reconnect;
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.failures - 1, 30));
    this.nextConnectAt = Date.now() + delay;
    this.lastFailure = f;
    this.o.stats.error();
    return delay;
  }

  private connect(signal: AbortSignal): Promise<net.Socket> {
    const { host, port, connectTimeoutMs } = this.o;
    return new Promise<net.Socket>((resolve, reject) => {
      const socket =
        this.o.tls === undefined ? net.connect({ host, port }) : tls.connect({ ...this.o.tls, host, port });
      let settled = false;
      let confirmTimer: NodeJS.Timeout | undefined;
      const finish = (error: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(confirmTimer);
        signal.removeEventListener("abort", onAbort);
        socket.off("error", onError);
        socket.off("close", onClose);
        if (error === undefined) {
          resolve(socket);
        } else {
          socket.destroy();
          reject(error);
        }
      };
      const onError = (err: Error): void => finish(err);
      const onClose = (): void =>
        finish(new SinkError("ERR_SINK_SEND", `${this.o.display} closed the connection during connect`, { sink: this.o.sink }));
      const onAbort = (): void => finish(this.abortError());
      const timer = setTimeout(
        () => finish(new SinkError("ERR_SINK_TIMEOUT", `Connecting to ${this.o.display} timed out after ${connectTimeoutMs} ms`, { sink: this.o.sink })),
        connectTimeoutMs,
      );
      socket.once("error", onError);
      socket.once("close", onClose);
      signal.addEventListener("abort", onAbort, { once: true });
      if (this.o.tls === undefined) {
        socket.once("connect", () => {
          socket.setNoDelay(true);
          socket.setKeepAlive(true, 30_000);
          finish(undefined);
        });
        return;
      }
      const tlsSocket = socket as tls.TLSSocket;
      tlsSocket.once("secureConnect", () => {
        tlsSocket.setNoDelay(true);
        tlsSocket.setKeepAlive(true, 30_000);
        if (tlsSocket.getProtocol() !== "TLSv1.3") return finish(undefined);
        // Resolve on a later turn: writing from inside the ticket callback re-enters OpenSSL and corrupts the stream.
        tlsSocket.once("session", () => setImmediate(finish, undefined));
        confirmTimer = setTimeout(() => finish(undefined), Math.min(TLS13_CONFIRM_MS, connectTimeoutMs));
      });
    });
  }

  private classify(error: unknown, phase: string): { error: SinkError; reason: string } {
    if (isTlsError(error)) return { error: tlsError(this.o.sink, this.o.display, error), reason: "tls_error" };
    if (error instanceof SinkError) {
      const reason = error.code === "ERR_SINK_TIMEOUT" ? (phase === "connect" ? "connect_timeout" : "write_timeout") : phase;
      return { error, reason: error.message.startsWith("The send was aborted") ? "aborted" : reason };
    }
    const code = (error as { code?: unknown } | null)?.code;
    const what = phase === "connect" ? `Cannot connect to ${this.o.display}` : `Writing to ${this.o.display} failed`;
    const err = new SinkError("ERR_SINK_SEND", `${what}: ${typeof code === "string" ? code : (error as Error)?.message ?? String(error)}`, {
      sink: this.o.sink,
      cause: error,
    });
    return { error: err, reason: phase === "connect" ? "connect_error" : phase };
  }

  private abortError(): SinkError {
    return new SinkError("ERR_SINK_SEND", "The send was aborted", { sink: this.o.sink });
  }
}
