// WaitQueue when zlib cannot deflate (out of memory for its state): the records stay as they are, none is lost.
import { afterEach, describe, expect, it, vi } from "vitest";

const failing = vi.hoisted(() => ({ deflate: false }));
vi.mock("node:zlib", async (importOriginal) => {
  const zlib = await importOriginal<typeof import("node:zlib")>();
  return {
    ...zlib,
    deflateRawSync: (...args: Parameters<typeof zlib.deflateRawSync>) => {
      if (failing.deflate) throw new RangeError("Array buffer allocation failed");
      return zlib.deflateRawSync(...args);
    },
  };
});

const { Entry } = await import("../../../src/pipeline/entry.js");
const { WaitQueue } = await import("../../../src/pipeline/wait-queue.js");

afterEach(() => {
  failing.deflate = false;
});

describe("WaitQueue without zlib", () => {
  it("keeps the records of a block it could not deflate whole, in order", () => {
    const q = new WaitQueue(0, 0);
    q.setPacking(true);
    const source = { name: "a", settle: () => undefined };
    const texts = Array.from({ length: 3_000 }, (_, i) => JSON.stringify({ message: `line ${i} ${"x".repeat(i % 50)}`, i }));
    const entries = texts.map((t, i) => new Entry(t, Buffer.byteLength(t), source, i));
    for (let i = 0; i < entries.length; i++) {
      failing.deflate = i >= 1_000 && i < 2_000;
      entries[i]!.pending = 1;
      q.push(entries[i]!);
    }
    expect(q.stats.records).toBeGreaterThan(0);
    expect(q.length).toBe(3_000);
    for (let i = 0; i < entries.length; i++) {
      const e = q.shift()!;
      expect(e.json, `record ${i}`).toBe(texts[i]);
      expect(e.seq).toBe(i);
    }
    expect(q.shift()).toBeUndefined();
  });
});
