// Time slices for the engine's work on the host's event loop. A collector's frames arrive in bursts: one turn of the
// loop can read a dozen 64 KiB pipe chunks, and routing the records in them into the sinks' queues (building a bulk
// body on the way) held the host's loop for 15 to 60 ms while its code was still cold. The engine now gives the loop
// back once it has worked for a slice in one turn: the channel stops reading until the next turn and the router
// admits the rest then, so the host's own timers and sockets get their turn in between.
import { performance } from "node:perf_hooks";
// The real ones: a test's fake timers replace the globals, and the engine must not wait for a test to advance them.
import { setImmediate as immediate } from "node:timers";

/** How long the engine works in one turn of the loop before it lets the host's callbacks run. */
export const SLICE_MS = 4;

export class Slice {
  /** When this turn's slice began, or -1 before the engine's first work in this turn. */
  private startedAt = -1;
  private readonly reset = (): void => {
    this.startedAt = -1;
  };

  constructor(
    private readonly sliceMs = SLICE_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether this turn's slice is used up. The first call in a turn of the loop starts the slice (and answers false);
   * the turn ends in its check phase (setImmediate), where the next slice may begin.
   */
  spent(): boolean {
    const now = this.now();
    if (this.startedAt < 0) {
      this.startedAt = now;
      immediate(this.reset);
      return false;
    }
    return now - this.startedAt >= this.sliceMs;
  }
}

/** The engine's slice: one per host, shared by every collector channel and the router. */
export const engineSlice = new Slice();

/**
 * Run `fn` in the next turn of the loop, after its timers and its I/O: a setImmediate callback that runs in this
 * turn's check phase would only lengthen the turn it was meant to end.
 */
export function nextTurn(fn: () => void): void {
  immediate(() => immediate(fn));
}
