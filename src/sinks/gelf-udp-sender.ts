// GelfSink's UDP sends, on a worker thread. A loopback `send` costs 6-10 µs of CPU here (the kernel delivers the
// datagram inside the call), more than building the message: on the host's thread that was about half of the
// event loop's time under load. The thread gets a batch's datagrams packed in one transferred buffer, sends them
// in order on its connected socket and answers which ones failed.
//
//   host: encode batch N+1 ──post──▶ worker: send batch N (bursts of SEND_BURST, then a turn for messages)
//         ◀── { id, sent, failed: [datagram, code, …] } once every send callback of the batch came back
//
// A worker that dies (or fails to start) fails the batches it held; the next send starts a new one.
import { Worker } from "node:worker_threads";

/** What became of one batch: datagrams [0, sent) were handed to the kernel; `failed` lists (index, error code) pairs. */
export interface UdpBatchResult {
  readonly sent: number;
  readonly failed: readonly (number | string)[];
}

export interface UdpTarget {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

// The worker's code, evaluated as CommonJS in the thread: self-contained, so the same string works from the
// bundle and from the sources under test. Batches are sent one after the other, in the order they arrived.
const WORKER_SOURCE = String.raw`
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const dgram = require("node:dgram");
const SEND_BURST = 64;
const socket = dgram.createSocket(workerData.family === 6 ? "udp6" : "udp4");
// Send errors arrive in the callbacks; an 'error' event without a listener would end the thread.
socket.on("error", () => {});
const queue = [];
const aborted = new Set();
let current;
// A connect that fails reports through 'error' only.
const onConnectError = (err) => parentPort.postMessage({ kind: "error", message: String((err && err.message) || err) });
socket.once("error", onConnectError);
socket.connect(workerData.port, workerData.address, () => {
  socket.off("error", onConnectError);
  parentPort.postMessage({ kind: "ready" });
});
parentPort.on("message", (m) => {
  if (m.kind === "abort") {
    if ((current && current.id === m.id) || queue.some((b) => b.id === m.id)) aborted.add(m.id);
    return;
  }
  queue.push(m);
  if (current === undefined) next();
});
function next() {
  const m = queue.shift();
  if (m === undefined) {
    current = undefined;
    return;
  }
  const buf = Buffer.from(m.buf);
  const offsets = m.offsets;
  const n = offsets.length - 1;
  const failed = [];
  let i = 0;
  let pending = 0;
  let acked = 0;
  let stopped = false;
  const finish = () => {
    aborted.delete(m.id);
    parentPort.postMessage({ kind: "done", id: m.id, sent: i, failed });
    next();
  };
  // Callbacks come back in send order: the k-th one is datagram k.
  const onSent = (err) => {
    const k = acked++;
    if (err) failed.push(k, (err && err.code) || String(err));
    if (--pending === 0 && stopped) finish();
  };
  const burst = () => {
    if (aborted.has(m.id)) stopped = true;
    else {
      const stop = Math.min(n, i + SEND_BURST);
      for (; i < stop; i++) {
        pending++;
        socket.send(buf.subarray(offsets[i], offsets[i + 1]), onSent);
      }
      if (i === n) stopped = true;
    }
    if (!stopped) setImmediate(burst);
    else if (pending === 0) finish();
  };
  current = m;
  burst();
}
`;

interface Waiter {
  resolve(result: UdpBatchResult): void;
  reject(error: Error): void;
}

export class UdpSender {
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 0;
  private failure: Error | undefined;
  private closing = false;
  private retiring = false;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (m: { kind: string; id: number; sent: number; failed: (number | string)[] }) => {
      if (m.kind !== "done") return;
      const w = this.waiters.get(m.id);
      this.waiters.delete(m.id);
      w?.resolve({ sent: m.sent, failed: m.failed });
      if (this.retiring && this.waiters.size === 0) void this.close();
    });
    worker.on("error", (error) => this.fail(error));
    worker.on("exit", (code) => this.fail(new Error(`the UDP sender thread exited (code ${code})`)));
  }

  /** A sender thread with a socket connected to `target`. Rejects when the thread or the socket cannot start. */
  static open(target: UdpTarget): Promise<UdpSender> {
    // The thread's own output is read and dropped: the library never writes to the host's console.
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: target,
      stdout: true,
      stderr: true,
      // It holds a few small objects per datagram and nothing for long.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
    });
    worker.stdout.resume();
    worker.stderr.resume();
    return new Promise<UdpSender>((resolve, reject) => {
      const onError = (error: Error): void => {
        worker.off("exit", onExit);
        void worker.terminate();
        reject(error);
      };
      const onExit = (code: number): void => {
        worker.off("error", onError);
        reject(new Error(`the UDP sender thread exited (code ${code}) before it was ready`));
      };
      worker.once("message", (m: { kind: string; message?: string }) => {
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (m.kind === "ready") resolve(new UdpSender(worker));
        else {
          void worker.terminate();
          reject(new Error(`cannot connect the UDP socket: ${m.message}`));
        }
      });
      worker.once("error", onError);
      worker.once("exit", onExit);
    });
  }

  /** False once the thread died or is retiring: the owner opens a new sender. */
  get alive(): boolean {
    return this.failure === undefined && !this.closing && !this.retiring;
  }

  /** Close once every batch already handed over has been answered (none of them is cut short). */
  retire(): void {
    this.retiring = true;
    if (this.waiters.size === 0) void this.close();
  }

  /**
   * Send the datagrams `data[offsets[k], offsets[k + 1])` in order. `data`'s buffer is transferred (unusable
   * here afterwards) when `data` starts it. An abort stops at the next burst; the result says how many were handed to the kernel.
   * Rejects when the thread died before it answered.
   */
  send(data: Uint8Array, offsets: Int32Array, signal: AbortSignal): Promise<UdpBatchResult> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    const done = new Promise<UdpBatchResult>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
    const onAbort = (): void => this.worker.postMessage({ kind: "abort", id });
    signal.addEventListener("abort", onAbort, { once: true });
    // The thread reads the buffer from its start: a view into a larger buffer is copied to one of its own.
    const own = data.byteOffset === 0 ? data : new Uint8Array(data);
    this.worker.postMessage({ kind: "batch", id, buf: own.buffer, offsets }, [own.buffer as ArrayBuffer]);
    if (signal.aborted) onAbort();
    return done.finally(() => signal.removeEventListener("abort", onAbort));
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
    this.fail(new Error("the UDP sender was closed"));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const w of this.waiters.values()) w.reject(this.failure);
    this.waiters.clear();
  }
}
