import { describe, expect, it } from "vitest";
import { AckTracker } from "../../../src/pipeline/ack-tracker.js";

describe("AckTracker", () => {
  it("advances the watermark only over a gap-free prefix of settled seqs", () => {
    const t = new AckTracker("s");
    const seen: number[] = [];
    t.onAdvance((w) => seen.push(w));
    t.settle(2);
    t.settle(1);
    expect(t.watermark).toBe(0);
    t.settle(0);
    expect(t.watermark).toBe(3);
    t.settle(3);
    t.settle(3); // duplicate is harmless
    t.settle(5);
    expect(t.watermark).toBe(4);
    expect(t.outOfOrder).toBe(1);
    t.settle(4);
    expect(t.watermark).toBe(6);
    expect(seen).toEqual([3, 4, 6]);
  });

  it("settles a shuffled million-entry range to the end", () => {
    const t = new AckTracker("s");
    const n = 100_000;
    const order = Array.from({ length: n }, (_, i) => i);
    // deterministic shuffle within windows of 64, as concurrent batches settle
    for (let i = 0; i < n; i += 64) order.splice(i, 64, ...order.slice(i, i + 64).reverse());
    for (const s of order) t.settle(s);
    expect(t.watermark).toBe(n);
    expect(t.outOfOrder).toBe(0);
  });
});
