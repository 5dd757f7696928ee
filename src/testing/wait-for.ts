// Bounded polling for tests around real I/O: wait until a condition holds, or fail with a message naming what was missing.
import { InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";
import { fakeTimersHint, realClearTimeout, realNow, realSetTimeout } from "../util/real-time.js";
import { MAX_TIMER_MS, checkKeys, optionKeys } from "../util/validate.js";


export interface WaitForOptions {
  /** Give up after this many milliseconds (real time). @default 5000 */
  timeoutMs?: number;
  /** Milliseconds between two calls of the predicate (real time). @default 10 */
  intervalMs?: number;
  /** Same as `timeoutMs` (the name of the first releases). */
  timeout?: number;
  /** Same as `intervalMs` (the name of the first releases). */
  interval?: number;
  /**
   * What the caller was waiting for, put into the timeout error. A function is called only on timeout,
   * so it can describe the state at that moment (`() => \`10 records, got ${sink.count}\``).
   */
  message?: string | (() => string);
  /** Stop waiting early: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

const WAIT_FOR_KEYS = optionKeys<WaitForOptions>()(["timeoutMs", "intervalMs", "timeout", "interval", "message", "signal"]);

/** Raised by `waitFor` when the condition did not hold in time. `cause` is the predicate's last error, if it threw. */
export class WaitForTimeoutError extends Error {
  override readonly name = "WaitForTimeoutError";
  /** The predicate's last return value (falsy), when its last call did not throw. */
  readonly lastValue: unknown;

  constructor(message: string, lastValue: unknown, cause: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.lastValue = lastValue;
  }
}

/** What `waitFor` resolves with: the predicate's value, which is never falsy (a lookup's `undefined` is not). */
export type Truthy<T> = Exclude<T, false | 0 | 0n | "" | null | undefined>;

/**
 * Call `predicate` until it returns (or resolves to) a truthy value, and resolve with that value.
 * A falsy result and a thrown error (or rejection) both mean "not yet". So lookups work as predicates
 * (`waitFor(() => sink.find((r) => r.message === "ready"))` resolves with the record), and so do assertions,
 * but since `expect(...)` returns `undefined` (falsy) an assertion-style predicate must end with `return true`:
 * `waitFor(() => { expect(sink.count).toBe(3); return true; })`. The last assertion error ends up in the
 * timeout message.
 *
 * After `timeout` ms it rejects with a `WaitForTimeoutError` whose message contains `message` and the last
 * error's message (or the last falsy value). A predicate whose promise never settles still times out.
 *
 * Timing uses Node's own timers and clock (`node:timers`, `node:perf_hooks`), which fake timers leave alone, so
 * `waitFor` keeps polling and times out even under `vi.useFakeTimers()`, however early they were installed. It does
 * not advance a fake clock: when the condition depends on fake time, advance it yourself (or inside the predicate).
 */
export function waitFor<T>(predicate: () => T | PromiseLike<T>, options: WaitForOptions = {}): Promise<Truthy<T>> {
  if (typeof predicate !== "function") {
    throw new InvalidOptionError(`Expected \`predicate\` to be a function, got ${describe(predicate)}`);
  }
  checkKeys("", options, WAIT_FOR_KEYS);
  const timeout = options.timeoutMs ?? options.timeout ?? 5000;
  const interval = options.intervalMs ?? options.interval ?? 10;
  if (typeof timeout !== "number" || !(timeout >= 0) || timeout > MAX_TIMER_MS) {
    throw new InvalidOptionError(`Expected \`timeout\` to be a number from 0 to ${MAX_TIMER_MS} (ms), got ${describe(timeout)}`);
  }
  if (typeof interval !== "number" || !(interval > 0) || interval === Infinity) {
    throw new InvalidOptionError(`Expected \`interval\` to be a finite positive number, got ${describe(interval)}`);
  }
  const { message, signal } = options;
  if (message !== undefined && typeof message !== "string" && typeof message !== "function") {
    throw new InvalidOptionError(`Expected \`message\` to be a string or a function, got ${describe(message)}`);
  }

  return new Promise<Truthy<T>>((resolve, reject) => {
    const started = realNow();
    let done = false;
    let attempts = 0;
    let lastValue: unknown;
    let lastError: unknown;
    let hasError = false;
    let pollTimer: ReturnType<typeof setTimeout> | undefined;

    const finish = (): void => {
      done = true;
      realClearTimeout(deadline);
      if (pollTimer !== undefined) realClearTimeout(pollTimer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = (): void => {
      if (done) return;
      finish();
      reject(signal!.reason);
    };
    const onTimeout = (): void => {
      if (done) return;
      finish();
      reject(timeoutError(timeout, attempts, message, hasError, lastError, lastValue));
    };
    const settle = (value: T): void => {
      if (done) return;
      if (value) {
        finish();
        resolve(value as Truthy<T>);
        return;
      }
      hasError = false;
      lastError = undefined;
      lastValue = value;
      schedule();
    };
    const fail = (error: unknown): void => {
      if (done) return;
      hasError = true;
      lastError = error;
      schedule();
    };
    const schedule = (): void => {
      // Never poll past the deadline: the deadline timer reports, so a slow predicate cannot stretch the wait.
      const left = timeout - (realNow() - started);
      if (left <= 0) return onTimeout();
      pollTimer = realSetTimeout(poll, Math.min(interval, left));
    };
    const poll = (): void => {
      pollTimer = undefined;
      if (done) return;
      attempts++;
      let result: T | PromiseLike<T>;
      try {
        result = predicate();
      } catch (error) {
        return fail(error);
      }
      if (result !== null && typeof result === "object" && typeof (result as PromiseLike<T>).then === "function") {
        // A rejection after the deadline is swallowed here rather than left unhandled.
        Promise.resolve(result).then(settle, fail);
      } else {
        settle(result as T);
      }
    };

    const deadline = realSetTimeout(onTimeout, timeout);
    if (signal !== undefined) {
      if (signal.aborted) {
        finish();
        reject(signal.reason);
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
    }
    poll();
  });
}

function timeoutError(
  timeout: number,
  attempts: number,
  message: string | (() => string) | undefined,
  hasError: boolean,
  lastError: unknown,
  lastValue: unknown,
): WaitForTimeoutError {
  let what: string;
  try {
    what = typeof message === "function" ? message() : message ?? "the predicate to return a truthy value";
  } catch (error) {
    what = `(message function threw: ${errorText(error)})`;
  }
  const last = hasError ? `last error: ${errorText(lastError)}` : `last value: ${describe(lastValue)}`;
  return new WaitForTimeoutError(
    `Timed out after ${timeout} ms waiting for ${what} (${attempts} ${attempts === 1 ? "try" : "tries"}; ${last}${fakeTimersHint()})`,
    hasError ? undefined : lastValue,
    hasError ? lastError : undefined,
  );
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : describe(error);
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
}
