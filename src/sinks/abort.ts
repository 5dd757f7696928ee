// Abortable waits shared by the local sinks, so every wait a send makes ends promptly when the engine aborts it.
import { SinkError } from "../errors.js";
import { errorText } from "../util/text.js";

/**
 * The error an aborted send throws: retryable (the records were not delivered and stay pending),
 * with the signal's reason as `cause` so the engine can tell its own deadline from other failures.
 */
export function abortedError(sink: string, signal: AbortSignal | undefined): SinkError {
  const reason: unknown = signal?.reason;
  const why = reason === undefined ? "aborted" : errorText(reason);
  return new SinkError("ERR_SINK_SEND", `Sink "${sink}": send aborted (${why})`, { sink, cause: reason });
}

/** Throws `abortedError` when the signal is already aborted. */
export function checkAborted(sink: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortedError(sink, signal);
}

/**
 * Wait `ms` with the global `setTimeout` as it is at call time, so `vi.useFakeTimers()` controls it.
 * Rejects with `abortedError` as soon as the signal aborts (and clears the timer). `unref`: the wait alone does not
 * keep the process alive (for waits bounded by a deadline of the caller's).
 */
export function sleep(sink: string, ms: number, signal: AbortSignal | undefined, unref = false): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) return reject(abortedError(sink, signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedError(sink, signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (unref) timer.unref();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Settle with `promise`, or reject with `abortedError` when the signal aborts first.
 * With no signal this is `promise` itself; a promise that never settles then waits forever, by design of the caller.
 */
export function untilSettledOrAborted<T>(sink: string, promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortedError(sink, signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(sink, signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
