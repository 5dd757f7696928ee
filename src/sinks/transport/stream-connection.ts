// One persistent TCP/TLS connection for stream protocols (GELF TCP, Logstash json_lines) that knows which bytes left.
//
//   send(segments) ──► [connect? (backoff gate)] ──► write seg 0, seg 1, … (pause on `false` until `drain`)
//                                                     │ write callbacks, in order: flushed += seg.records
//                                                     ▼
//   error / peer FIN / stall timeout / abort ──► destroy socket; report `flushed` records delivered, the rest retry
//
// TCP has no acknowledgements: "delivered" means the bytes were handed to the kernel (write callback fired).
// Bytes in our send buffer or in the receiver's unread receive buffer die with a reset connection, and nobody can
// tell which. So the connection keeps the last `resendWindowBytes` it wrote (the replay window) and, after any
// broken connection, writes them again first on the next one: a reset then costs duplicates, not records, as long
// as what was in flight fits in the window. Those records were already reported delivered (their checkpoints may
// have moved on), so the resend does not wait for the next batch: after one reconnect backoff a background resend
// writes them on a new connection (serialized with the sends like any write), again with backoff until it succeeds
// or the connection is closed.
import * as net from "node:net";
import * as tls from "node:tls";
import { SinkError, StateError } from "../../errors.js";
import { sleep, untilSettledOrAborted } from "../abort.js";
import type { SinkStats } from "../stats.js";
import type { ResolvedReconnect } from "./options.js";
import { isTlsError, tlsError } from "./tls.js";
import { errorText } from "../../util/text.js";

/** A slice of the outgoing stream made of whole records (framing included). */
export interface StreamSegment {
  readonly data: string | Buffer;
  readonly records: number;
}

export interface StreamWriteResult {
  /** Records (counted from the first segment) whose bytes all reached the kernel. */
  readonly flushed: number;
  /** Set when not every record was flushed (a StateError once the connection is closed). */
  readonly error?: SinkError | StateError;
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
  /** Bytes of recent writes kept for a resend after a broken connection; 0 disables. */
  resendWindowBytes: number;
}

// How long to wait, after a TLS 1.3 handshake, for the server's session ticket. In TLS 1.3 the client finishes the
// handshake before the server has checked the client certificate; a server that rejects it sends an alert instead of
// tickets. Without this wait the first writes would "succeed" and then vanish. Servers that send no tickets cost this
// delay once per connection.
const TLS13_CONFIRM_MS = 1000;

// Floor of the wait before a background resend: with `reconnect.initialDelayMs: 0` nothing else would pace it (a
// send's retries are paced by the engine, a background resend only by its timer).
const RESEND_MIN_DELAY_MS = 100;

interface WriteState {
  readonly socket: net.Socket;
  /** The replayed segments first (`replayed` of them, already reported delivered), then the caller's. */
  readonly segments: readonly StreamSegment[];
  readonly replayed: number;
  /** Replayed segments the kernel took (a prefix: after the first failure nothing more counts). */
  replayOk: number;
  done: number;
  flushed: number;
  needDrain: boolean;
  failure: { error: unknown; reason: string } | undefined;
  finished: boolean;
}

export class StreamConnection {
  private socket: net.Socket | undefined;
  /** The socket of a connect in progress. */
  private connecting: net.Socket | undefined;
  private failures = 0;
  private nextConnectAt = 0;
  private lastFailure: { error: SinkError; reason: string } | undefined;
  private state: WriteState | undefined;
  private waiter: (() => void) | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  private connectedBefore = false;
  private closed = false;
  /** Recent writes on `windowSocket`, oldest first, with their byte sizes. */
  private window: StreamSegment[] = [];
  private windowSizes: number[] = [];
  private windowBytes = 0;
  private windowSocket: net.Socket | undefined;
  /** What a broken connection may have lost: written first on the next connection. */
  private replay: StreamSegment[] = [];
  /** The pending background resend of `replay` (see `scheduleResend`). */
  private resendTimer: NodeJS.Timeout | undefined;
  private resending = false;
  /** Background resends scheduled since a send last delivered records: the exponent of their backoff. */
  private resendRounds = 0;
  /** Aborted by close(): ends a background resend still connecting or writing. */
  private readonly resendAbort = new AbortController();
  /** close() has started: it resends (or counts as lost) what is owed itself. */
  private closing = false;
  /** close() has counted what was still owed as resend-lost: nothing is owed any more. */
  private settled = false;

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

  /**
   * Write the segments in order; never throws. A write waits for the ones before it (one socket, one stream). If
   * its signal aborts while it waits, it answers `aborted` at once, with nothing of it written (when its turn
   * comes, it sees the aborted signal and writes nothing): a send queued behind a stuck one ends at its own
   * deadline, not at the stuck one's. Once it has started, an abort ends it as doWrite says.
   */
  write(segments: readonly StreamSegment[], signal: AbortSignal): Promise<StreamWriteResult> {
    let started = false;
    const run = this.serialized(() => {
      started = true;
      return this.doWrite(segments, signal);
    });
    return new Promise<StreamWriteResult>((resolve, reject) => {
      const onAbort = (): void => {
        if (!started) resolve({ flushed: 0, reason: "aborted", error: this.abortError() });
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
      run.then(
        (result) => {
          signal.removeEventListener("abort", onAbort);
          resolve(result);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        },
      );
    });
  }

  /**
   * End the connection cleanly (FIN after the kernel sent what it holds), destroying it if that takes too long.
   * Records a broken connection left in doubt are written again first; a connection that does not close cleanly
   * (the peer reset it) gets its window resent on a new one, a few times, before the rest counts as resend-lost.
   * `signal` (the caller's close deadline) stops all of that at once: connects and sockets are destroyed, timers
   * cleared, and what was not resent counts as resend-lost. `lost` hears what it counted so.
   */
  async close(signal?: AbortSignal, lost?: (count: number, detail: string) => void): Promise<void> {
    const stop = signal ?? new AbortController().signal;
    this.closing = true;
    clearTimeout(this.resendTimer);
    this.resendTimer = undefined;
    // A background resend still running finishes first (close's own writes queue behind it), unless the deadline comes.
    const stopResend = (): void => this.resendAbort.abort();
    if (stop.aborted) stopResend();
    else stop.addEventListener("abort", stopResend, { once: true });
    for (let attempt = 0; attempt < 3 && !this.closed && !stop.aborted; attempt++) {
      if (this.replay.length > 0) {
        // Honour the reconnect backoff rather than give up inside it.
        const wait = Math.min(this.nextConnectAt - Date.now(), this.o.reconnect.maxDelayMs, this.o.connectTimeoutMs);
        // Unref'd only when the caller bounds the close: a bare `await close()` must not let the process exit here.
        if (wait > 0) await sleep(this.o.sink, wait, stop, signal !== undefined).catch(() => undefined);
        if (stop.aborted) break;
        const attemptSignal = new AbortController();
        const timer = setTimeout(() => attemptSignal.abort(), this.o.connectTimeoutMs).unref();
        const onStop = (): void => attemptSignal.abort();
        stop.addEventListener("abort", onStop, { once: true });
        try {
          await this.write([], attemptSignal.signal);
        } finally {
          clearTimeout(timer);
          stop.removeEventListener("abort", onStop);
        }
      }
      if (await this.endSocket(stop)) break;
    }
    this.closed = true;
    if (stop.aborted) {
      // A connect (from a write still holding the lock) would otherwise run on to its own timeout.
      this.connecting?.destroy();
      // Its window is in doubt (what the peer had not read when the socket was destroyed is discarded).
      if (this.socket !== undefined) this.drop(this.socket);
    }
    await untilSettledOrAborted(this.o.sink, this.lock, stop).catch(() => undefined);
    stop.removeEventListener("abort", stopResend);
    // Past the deadline a write may still hold part of the replay: it cannot go out any more either.
    const given = this.pendingResend;
    this.o.stats.recordsResendLost += given;
    this.replay = [];
    this.settled = true;
    this.notePending();
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
    if (given === 0) return;
    const why = stop.aborted ? "by the close deadline" : "after three attempts failed";
    lost?.(given, `${given} record(s) written to ${this.o.display} before a connection broke could not be written again ${why}: they may not have arrived`);
  }

  /**
   * FIN, then wait for the close. True when it closed without a reset or error (or there was nothing to close).
   * `stop` destroys the socket at once; the window then stays owed (nothing confirmed the peer has it).
   */
  private async endSocket(stop: AbortSignal): Promise<boolean> {
    await untilSettledOrAborted(this.o.sink, this.lock, stop).catch(() => undefined);
    if (stop.aborted) return false;
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return this.replay.length === 0;
    // The window is only owed again if this close fails.
    const window = this.window;
    this.window = [];
    this.windowSizes = [];
    this.windowBytes = 0;
    this.windowSocket = undefined;
    this.socket = undefined;
    const clean = await new Promise<boolean>((resolve) => {
      let failed = false;
      socket.once("error", () => (failed = true));
      // A peer that took everything but does not close its side is not a failure: no resend for it.
      const timer = setTimeout(() => socket.destroy(), this.o.connectTimeoutMs);
      const onStop = (): void => {
        failed = true;
        socket.destroy();
      };
      stop.addEventListener("abort", onStop, { once: true });
      socket.once("close", (hadError: boolean) => {
        clearTimeout(timer);
        stop.removeEventListener("abort", onStop);
        resolve(!failed && !hadError);
      });
      socket.end();
    });
    if (!clean) {
      this.replay.unshift(...window);
      this.notePending();
    }
    return clean && this.replay.length === 0;
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
      return { flushed: 0, reason: "closed", error: new StateError("ERR_INVALID_STATE", "The sink is closed", { sink: this.o.sink }) };
    }
    if (signal.aborted) return { flushed: 0, reason: "aborted", error: this.abortError() };
    if (segments.length === 0 && this.replay.length === 0) return { flushed: 0 };
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

    const replayed = this.replay.length;
    const all = replayed === 0 ? segments : [...this.replay, ...segments];
    this.replay = [];
    this.windowSocket = socket;
    const st: WriteState = { socket, segments: all, replayed, replayOk: 0, done: 0, flushed: 0, needDrain: false, failure: undefined, finished: false };
    this.state = st;
    const started = performance.now();
    let bytes = 0;
    const sizes: number[] = [];
    const onWritten = (err?: Error | null): void => {
      if (st.finished) return;
      if (err) st.failure ??= { error: err, reason: "connection_error" };
      else if (st.failure === undefined) {
        const seg = st.segments[st.done]!;
        if (st.done < st.replayed) {
          this.o.stats.recordsResent += seg.records;
          st.replayOk++;
          this.notePending();
        } else {
          st.flushed += seg.records;
        }
        this.remember(socket, seg, sizes[st.done]!);
      }
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
        if (st.done === all.length) break;
        if (st.failure !== undefined) break;
        if (next < all.length && !st.needDrain) {
          const seg = all[next++]!;
          const size = typeof seg.data === "string" ? Buffer.byteLength(seg.data) : seg.data.length;
          sizes.push(size);
          bytes += size;
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
    if (st.done === all.length && st.failure === undefined) {
      this.o.stats.request("ok", bytes, latency);
      // The destination takes records again: the next broken connection's resend starts from the first backoff.
      if (segments.length > 0) this.resendRounds = 0;
      return { flushed: st.flushed };
    }
    this.o.stats.request("error", bytes, latency);
    this.o.stats.error();
    this.drop(socket);
    // Replayed segments this connection did not take stay due (after what the window just gave back), unless a
    // close past its deadline already counted them as lost.
    if (st.replayOk < st.replayed && !this.settled) {
      this.replay.push(...all.slice(st.replayOk, st.replayed));
      this.notePending();
      this.scheduleResend();
    }
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
    // Broken, or destroyed by a close past its deadline: what it may not have delivered is written again on the next
    // connection, or, once close() is past resending, counted by it as resend-lost. Never just forgotten: those
    // records were reported delivered.
    if (socket !== this.windowSocket) return;
    const window = this.window;
    this.window = [];
    this.windowSizes = [];
    this.windowBytes = 0;
    this.windowSocket = undefined;
    if (this.settled) {
      for (const seg of window) this.o.stats.recordsResendLost += seg.records;
      return;
    }
    this.replay.push(...window);
    this.notePending();
    this.scheduleResend();
  }

  /**
   * Resend what a broken connection left in doubt without waiting for the next send: those records were reported
   * delivered, so until then they would exist only in this process. Waits the reconnect backoff (at least until the
   * next connect is allowed, growing per round while connections keep breaking), then writes through `write` like a
   * send, so it never interleaves with one. Repeats while something is owed; close() cancels it.
   */
  private scheduleResend(): void {
    if (this.closing || this.resending || this.resendTimer !== undefined || this.replay.length === 0) return;
    const delay = Math.max(RESEND_MIN_DELAY_MS, this.nextConnectAt - Date.now(), this.backoff(++this.resendRounds));
    // Unref'd: a pending resend alone does not keep the process alive (close() resends with a ref'd wait).
    this.resendTimer = setTimeout(() => void this.resendNow(), delay).unref();
  }

  private async resendNow(): Promise<void> {
    this.resendTimer = undefined;
    this.resending = true;
    // write() reports failures in its result; nothing may reject from a timer callback into the host.
    await this.write([], this.resendAbort.signal).catch(() => undefined);
    this.resending = false;
    // A refused connect or another broken connection: try again after the next backoff.
    this.scheduleResend();
  }

  private notePending(): void {
    this.o.stats.recordsResendPending = this.pendingResend;
  }

  /** Keep a written segment in the replay window, evicting the oldest beyond `resendWindowBytes`. */
  private remember(socket: net.Socket, seg: StreamSegment, size: number): void {
    const limit = this.o.resendWindowBytes;
    if (limit === 0 || socket !== this.windowSocket) return;
    this.window.push(seg);
    this.windowSizes.push(size);
    this.windowBytes += size;
    let evict = 0;
    while (this.windowBytes - this.windowSizes[evict]! >= limit && evict < this.window.length - 1) this.windowBytes -= this.windowSizes[evict++]!;
    if (evict > 0) {
      this.window.splice(0, evict);
      this.windowSizes.splice(0, evict);
    }
  }

  /**
   * Records already reported delivered that wait for a resend (a broken connection left them in doubt), including
   * those of a resend in progress that the kernel has not taken yet.
   */
  get pendingResend(): number {
    let n = 0;
    for (const seg of this.replay) n += seg.records;
    const st = this.state;
    if (st !== undefined && !this.settled) for (let i = st.replayOk; i < st.replayed; i++) n += st.segments[i]!.records;
    return n;
  }

  /** The reconnect backoff before attempt `n` after a failure (1 = the first retry). */
  private backoff(n: number): number {
    const { initialDelayMs, maxDelayMs } = this.o.reconnect;
    return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(n - 1, 30));
  }

  private noteConnectFailure(f: { error: SinkError; reason: string }): number {
    this.failures++;
    const delay = this.backoff(this.failures);
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
      this.connecting = socket;
      let settled = false;
      let confirmTimer: NodeJS.Timeout | undefined;
      const finish = (error: unknown): void => {
        if (settled) return;
        settled = true;
        if (this.connecting === socket) this.connecting = undefined;
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
    const err = new SinkError("ERR_SINK_SEND", `${what}: ${typeof code === "string" ? code : errorText(error)}`, {
      sink: this.o.sink,
      cause: error,
    });
    return { error: err, reason: phase === "connect" ? "connect_error" : phase };
  }

  private abortError(): SinkError {
    return new SinkError("ERR_SINK_SEND", "The send was aborted", { sink: this.o.sink });
  }
}
