// Timers and a clock that fake timers do not replace, for the waits a test relies on to end (waitFor,
// MemorySink.waitForCount). vitest's and Jest's fake timers patch the globals (`setTimeout`, `performance`,
// `Date`), not the `node:timers` and `node:perf_hooks` modules: so these stay real however early a test installs
// fake timers (a setup file that calls `vi.useFakeTimers()` before this library is imported, say).
import { performance } from "node:perf_hooks";
import * as timers from "node:timers";

export const realSetTimeout = timers.setTimeout;
export const realClearTimeout = timers.clearTimeout;
export const realSetInterval = timers.setInterval;
export const realClearInterval = timers.clearInterval;
export const realSetImmediate = timers.setImmediate;
export const realNow = (): number => performance.now();

/** A hint for timeout messages: fake timers are installed (the globals are not Node's own timers). */
export function fakeTimersHint(): string {
  return globalThis.setTimeout === timers.setTimeout
    ? ""
    : "; fake timers are installed: the engine's batch, retry and deadline timers wait for the fake clock to be advanced";
}

const resolved = Promise.resolve();

/**
 * Run `fn` as a microtask, as `queueMicrotask` does, but through a promise job: fake timers that replace
 * `queueMicrotask` (vitest's `toFake: ["queueMicrotask"]`) cannot hold it back. `fn` must not throw.
 */
export function microtask(fn: () => void): void {
  void resolved.then(fn);
}
