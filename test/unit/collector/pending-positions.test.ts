import { describe, expect, it } from "vitest";
import { MAX_PENDING_POSITIONS, PendingPositions } from "../../../src/collector/runtime/pending-positions.js";
import { mulberry32 } from "../../helpers/random-json.js";

/** What a file collector does: positions in seq order, each file's ends growing. */
function* positions(rand: () => number, files: readonly string[], count: number): Generator<{ seq: number; fileKey: string; end: number }> {
  const ends = new Map(files.map((f) => [f, 0]));
  let seq = 0;
  for (let i = 0; i < count; i++) {
    const fileKey = files[Math.floor(rand() * files.length)]!;
    const end = ends.get(fileKey)! + 1 + Math.floor(rand() * 5000);
    ends.set(fileKey, end);
    seq += Math.floor(rand() * 4); // blank-line runs repeat a seq
    yield { seq, fileKey, end };
  }
}

describe("PendingPositions", () => {
  it("commits each file's furthest settled position, exactly as a plain log does, below the cap", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rand = mulberry32(seed);
      const pending = new PendingPositions();
      const all: { seq: number; fileKey: string; end: number }[] = [];
      let watermark = 0;
      for (const p of positions(rand, ["a", "b", "c"], 2000)) {
        pending.add(p.seq, p.fileKey, p.end);
        all.push(p);
        if (rand() < 0.1) {
          // Records settle only after they were sent: the watermark stays at most one past the newest seq.
          const next = Math.min(watermark + Math.floor(rand() * 80), p.seq + 1);
          const expected = new Map<string, number>();
          for (const q of all) if (q.seq < next) expected.set(q.fileKey, q.end);
          expect(pending.settle(next) ?? new Map(), `seed ${seed}, watermark ${next}`).toEqual(expected);
          watermark = next;
          while (all.length > 0 && all[0]!.seq < watermark) all.shift();
        }
      }
    }
  });

  it("stays bounded while one record never settles, and catches up once it does", () => {
    // One stuck record at seq 0; one file, then three, then 200 (a container log directory) keep flowing behind it.
    const many = Array.from({ length: 200 }, (_, i) => `f${i}`);
    for (const files of [["a"], ["a", "b", "c"], many]) {
      const pending = new PendingPositions();
      const last = new Map<string, number>();
      for (const p of positions(mulberry32(7), files, 100_000)) {
        pending.add(p.seq, p.fileKey, p.end);
        last.set(p.fileKey, p.end);
        if (p.seq % 1000 === 0) expect(pending.settle(0)).toBeUndefined();
      }
      expect(pending.length, `${files.length} files`).toBeLessThanOrEqual(MAX_PENDING_POSITIONS + files.length);
      expect(pending.settle(Number.MAX_SAFE_INTEGER)).toEqual(last);
      expect(pending.length).toBe(0);
    }
  });

  it("never commits a position before its record is settled, once folding starts", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rand = mulberry32(100 + seed);
      const pending = new PendingPositions(16); // a small cap, so positions fold all the time
      // For each file: the ends added so far, with the seq each needs settled.
      const added = new Map<string, { seq: number; end: number }[]>();
      const committed = new Map<string, number>();
      let watermark = 0;
      // One file written rarely: its newest position is often settled long before its next one comes.
      const files = [...Array<string>(10).fill("a"), ...Array<string>(10).fill("b"), ...Array<string>(9).fill("c"), "rare"];
      for (const p of positions(rand, files, 3000)) {
        pending.add(p.seq, p.fileKey, p.end);
        (added.get(p.fileKey) ?? added.set(p.fileKey, []).get(p.fileKey)!).push(p);
        if (rand() < 0.05) {
          // Small steps: a few positions leave at a time, so the ring stays at its cap while files fold.
          watermark = Math.min(watermark + Math.floor(rand() * 24), p.seq + 1);
          for (const [fileKey, end] of pending.settle(watermark) ?? []) {
            const safe = added.get(fileKey)!.filter((q) => q.seq < watermark).map((q) => q.end);
            expect(safe, `seed ${seed}: ${fileKey} committed to ${end} at watermark ${watermark}`).toContain(end);
            expect(end, `seed ${seed}: ${fileKey} went back`).toBeGreaterThan(committed.get(fileKey) ?? -1);
            committed.set(fileKey, end);
          }
        }
      }
      expect(pending.length, `seed ${seed}`).toBeLessThanOrEqual(16 + 4);
      // Everything settled: every file ends at its last position.
      for (const [fileKey, end] of pending.settle(Number.MAX_SAFE_INTEGER) ?? []) committed.set(fileKey, end);
      for (const [fileKey, list] of added) expect(committed.get(fileKey), `seed ${seed}: ${fileKey}`).toBe(list.at(-1)!.end);
    }
  });
});
