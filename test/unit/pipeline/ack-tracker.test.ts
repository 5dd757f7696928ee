import { describe, expect, it } from "vitest";
import { AckTracker } from "../../../src/pipeline/ack-tracker.js";
import { mulberry32 } from "../../helpers/random-json.js";

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

  it("holds everything settled behind a record that never settles as one range, past 2^24 seqs", () => {
    // A record retried without end while its source flows on: everything behind it settles in order.
    const t = new AckTracker("s", 7);
    const n = 2 ** 24 + 1000; // one per seq, a Set gave up here ("Set maximum size exceeded")
    for (let s = 8; s < 8 + n; s++) t.settle(s);
    expect(t.watermark).toBe(7);
    expect(t.outOfOrder).toBe(n);
    expect(t.ranges).toBe(1);
    t.settle(7);
    expect(t.watermark).toBe(8 + n);
    expect(t.outOfOrder).toBe(0);
    expect(t.ranges).toBe(0);
  });

  it("agrees with a seq-by-seq model under random settle orders, duplicates and late gaps", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = mulberry32(seed);
      const start = Math.floor(rand() * 1000);
      const n = 2000 + Math.floor(rand() * 3000);
      // Windows of random size settled in random order; some seqs held back until the very end.
      const order: number[] = [];
      const late: number[] = [];
      for (let i = 0; i < n; ) {
        const w = 1 + Math.floor(rand() * 200);
        const win = Array.from({ length: Math.min(w, n - i) }, (_, k) => start + i + k);
        for (let k = win.length - 1; k > 0; k--) {
          const j = Math.floor(rand() * (k + 1));
          [win[k], win[j]] = [win[j]!, win[k]!];
        }
        for (const s of win) {
          if (rand() < 0.01) late.push(s);
          else order.push(s);
          if (rand() < 0.05) order.push(start + Math.floor(rand() * (i + win.length))); // a duplicate settle
        }
        i += win.length;
      }
      order.push(...late.reverse());
      const t = new AckTracker("s", start);
      const advances: number[] = [];
      t.onAdvance((w) => advances.push(w));
      const settled = new Uint8Array(n);
      let low = 0;
      for (const s of order) {
        t.settle(s);
        settled[s - start] = 1;
        const before = low;
        while (low < n && settled[low] === 1) low++;
        if (low !== before) expect(advances.at(-1), `seed ${seed}: advance after settling ${s}`).toBe(start + low);
        let ahead = 0;
        let runs = 0;
        for (let k = low; k < n; k++) {
          if (settled[k] === 1) {
            ahead++;
            if (settled[k - 1] !== 1) runs++;
          }
        }
        if (t.watermark !== start + low || t.outOfOrder !== ahead || t.ranges !== runs) {
          expect({ watermark: t.watermark, outOfOrder: t.outOfOrder, ranges: t.ranges }, `seed ${seed}, after settling ${s}`).toEqual({ watermark: start + low, outOfOrder: ahead, ranges: runs });
        }
      }
      expect(t.watermark, `seed ${seed}`).toBe(start + n);
      expect(t.ranges).toBe(0);
    }
  });

  it("closes thousands of gaps from the front, one range at a time", () => {
    // Every odd seq first (3000 ranges), then the evens in order: each closes the gap in front of one range.
    const t = new AckTracker("s");
    for (let s = 1; s < 6000; s += 2) t.settle(s);
    expect(t.ranges).toBe(3000);
    for (let s = 0; s < 6000; s += 2) {
      t.settle(s);
      if (t.watermark !== s + 2 || t.ranges !== 3000 - s / 2 - 1) {
        expect({ watermark: t.watermark, ranges: t.ranges }, `after settling ${s}`).toEqual({ watermark: s + 2, ranges: 3000 - s / 2 - 1 });
      }
    }
    expect(t.outOfOrder).toBe(0);
    // And from the back: the evens in reverse join the ranges on both sides.
    const u = new AckTracker("u");
    for (let s = 1; s < 6000; s += 2) u.settle(s);
    for (let s = 5998; s > 0; s -= 2) u.settle(s);
    expect(u.ranges).toBe(1);
    expect(u.outOfOrder).toBe(5999);
    u.settle(0);
    expect(u.watermark).toBe(6000);
  });

  it("starts over with no ranges after reset", () => {
    const t = new AckTracker("s");
    t.settle(5);
    t.settle(9);
    expect(t.ranges).toBe(2);
    t.reset(100);
    expect(t.ranges).toBe(0);
    expect(t.outOfOrder).toBe(0);
    t.settle(101);
    t.settle(100);
    expect(t.watermark).toBe(102);
  });
});

