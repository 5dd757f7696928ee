// How many batches a sink with `concurrency: "adaptive"` may have in flight: additive increase, multiplicative
// decrease (AIMD, as TCP's congestion window) on what the destination says.
//
//   a round of `limit` sends all succeeded while work waited for a slot ──▶ limit + 1 (up to max)
//   a send the destination pushed back on (429, 503, a retryable failure, a timeout) ──▶ limit / 2 (down to 1)
//
// Growth needs demand: a lane whose sends keep up at its current limit (no batch waiting for a slot) does not grow,
// so a quiet source never opens more requests than it needs. A push-back halves the limit once per round: the sends
// already in flight when it came were launched under the old limit, and their push-backs say the same thing again.
// Explicit signals only, not round-trip times: Elasticsearch answers an overloaded bulk with 429 items
// (es_rejected_execution_exception), and a destination that only slows down is held by `maxConcurrency` and the send
// timeout.

export class AdaptiveConcurrency {
  #limit = 1;
  /** Sends of the current round that succeeded. */
  #successes = 0;
  /** Work waited for a slot during the current round. */
  #saturated = false;
  /** Rounds end at each decrease: a send remembers the round it started in. */
  #round = 0;
  /** Times the limit went up and down. */
  increases = 0;
  decreases = 0;

  constructor(readonly max: number) {}

  /** Batches that may be in flight now. */
  get limit(): number {
    return this.#limit;
  }

  /** A send starts; pass what this returns to `ended`. */
  started(): number {
    return this.#round;
  }

  /** A batch was ready while every slot was busy. */
  saturated(): void {
    this.#saturated = true;
  }

  /** A send that `started()` in `round` ended; `pushedBack`: the destination said it was overloaded. */
  ended(round: number, pushedBack: boolean): void {
    if (round !== this.#round) return; // launched under a limit that is gone: it says nothing about the new one
    if (pushedBack) {
      if (this.#limit > 1) this.decreases++;
      this.#limit = Math.ceil(this.#limit / 2);
      this.#round++;
      this.#successes = 0;
      this.#saturated = false;
      return;
    }
    if (++this.#successes < this.#limit) return;
    if (this.#saturated && this.#limit < this.max) {
      this.#limit++;
      this.increases++;
    }
    this.#successes = 0;
    this.#saturated = false;
  }
}
