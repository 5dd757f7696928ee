/**
 * A one-shot event whose waiters can leave. A promise that stays pending for an object's whole life keeps every
 * reaction ever attached to it (a `Promise.race` against it leaves one behind per call); a latch drops a waiter as
 * soon as the thing it waited for beside the latch settled.
 */
export class Latch {
  private fired = false;
  private readonly waiters = new Set<() => void>();

  get done(): boolean {
    return this.fired;
  }

  /** Waiters still attached. */
  get waiting(): number {
    return this.waiters.size;
  }

  fire(): void {
    if (this.fired) return;
    this.fired = true;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }

  /** Call `fn` when the latch fires (at once if it has); returns a function that cancels the call. */
  onFire(fn: () => void): () => void {
    if (this.fired) {
      fn();
      return () => undefined;
    }
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }

  /** Settles like `p`, or resolves when the latch fires first. */
  race(p: Promise<unknown>): Promise<void> {
    if (this.fired) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const off = this.onFire(resolve);
      p.then(
        () => {
          off();
          resolve();
        },
        (error: unknown) => {
          off();
          reject(error);
        },
      );
    });
  }
}
