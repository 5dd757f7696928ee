// The adaptive limit on its own: AIMD over push-backs, one halving per round, growth only under demand, a ceiling.
import { describe, expect, it } from "vitest";
import { AdaptiveConcurrency } from "../../../src/pipeline/adaptive-concurrency.js";

/** Run `n` sends of the current round to success, with work waiting for a slot when `saturated`. */
function succeed(a: AdaptiveConcurrency, n: number, saturated: boolean): void {
  for (let i = 0; i < n; i++) {
    const round = a.started();
    if (saturated) a.saturated();
    a.ended(round, false);
  }
}

describe("AdaptiveConcurrency", () => {
  it("starts at 1 and grows by one after each round of `limit` successes under demand, up to its maximum", () => {
    const a = new AdaptiveConcurrency(4);
    expect(a.limit).toBe(1);
    const limits: number[] = [];
    for (let i = 0; i < 6; i++) {
      succeed(a, a.limit, true);
      limits.push(a.limit);
    }
    expect(limits).toEqual([2, 3, 4, 4, 4, 4]);
    expect(a.increases).toBe(3);
  });

  it("does not grow without demand: sends that keep up leave the limit where it is", () => {
    const a = new AdaptiveConcurrency(8);
    succeed(a, 100, false);
    expect(a.limit).toBe(1);
    succeed(a, 1, true);
    expect(a.limit).toBe(2);
    succeed(a, 20, false);
    expect(a.limit).toBe(2);
    // Demand at any point of a round counts: one send that found work waiting, then one that did not.
    succeed(a, 1, true);
    succeed(a, 1, false);
    expect(a.limit).toBe(3);
  });

  it("halves on a push-back once per round: the other sends of that round say the same thing again", () => {
    const a = new AdaptiveConcurrency(16);
    for (let i = 1; i < 8; i++) succeed(a, a.limit, true);
    expect(a.limit).toBe(8);
    const rounds = Array.from({ length: 8 }, () => a.started());
    a.ended(rounds[0]!, true);
    expect(a.limit).toBe(4);
    for (const r of rounds.slice(1)) a.ended(r, true);
    expect(a.limit).toBe(4);
    expect(a.decreases).toBe(1);
    // A send of the new round that is pushed back halves again, down to 1 and no lower.
    a.ended(a.started(), true);
    a.ended(a.started(), true);
    a.ended(a.started(), true);
    expect(a.limit).toBe(1);
    expect(a.decreases).toBe(3); // 8 → 4 → 2 → 1; a push-back at 1 changes nothing
  });

  it("a success from before a decrease does not count toward the next increase", () => {
    const a = new AdaptiveConcurrency(8);
    succeed(a, 1, true);
    expect(a.limit).toBe(2);
    const old = a.started();
    a.ended(a.started(), true); // back to 1, new round
    expect(a.limit).toBe(1);
    a.saturated();
    a.ended(old, false);
    expect(a.limit).toBe(1);
    succeed(a, 1, true);
    expect(a.limit).toBe(2);
  });
});
