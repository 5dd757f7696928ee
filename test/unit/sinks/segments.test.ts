// packLines: records (text or UTF-8 bytes) joined into bounded segments without splitting one, in order.
import { describe, expect, it } from "vitest";
import { EntryBatch } from "../../../src/pipeline/batch.js";
import { Entry } from "../../../src/pipeline/entry.js";
import { packLines, packRecords, recordBytes } from "../../../src/sinks/transport/segments.js";
import { framedEntries } from "../../helpers/frame-entries.js";

const text = (d: string | Buffer): string => (typeof d === "string" ? d : d.toString("utf8"));

describe("packLines", () => {
  it("keeps every record whole and in order, text and bytes alike, under the byte bound", () => {
    const lines: (string | Buffer)[] = [];
    for (let i = 0; i < 500; i++) {
      const line = `{"n":${i},"s":"${"é".repeat(i % 17)}"}`;
      lines.push(i % 3 === 0 ? Buffer.from(line) : line);
    }
    const segments = packLines(lines, "\0", 1_000);
    expect(segments.length).toBeGreaterThan(10);
    let next = 0;
    for (const seg of segments) {
      const body = text(seg.data);
      expect(Buffer.byteLength(body)).toBe(seg.bytes);
      expect(seg.bytes).toBeLessThanOrEqual(1_000);
      expect(body.endsWith("\0")).toBe(true);
      const parts = body.slice(0, -1).split("\0");
      expect(parts).toHaveLength(seg.records);
      for (const p of parts) expect(p).toBe(text(lines[next++]!));
    }
    expect(next).toBe(lines.length);
  });

  it("segments of text only stay strings; a segment holding bytes is a Buffer", () => {
    const [a, b] = packLines(["x", "y", Buffer.from("z")], "\n", 4);
    expect(a!.data).toBe("x\ny\n");
    expect(Buffer.isBuffer(b!.data)).toBe(true);
    expect(text(b!.data)).toBe("z\n");
  });

  it("a record longer than the bound gets a segment of its own", () => {
    const long = Buffer.from("L".repeat(50));
    const segments = packLines(["a", long, "b"], "\n", 10);
    expect(segments.map((s) => [text(s.data), s.records])).toEqual([
      ["a\n", 1],
      ["L".repeat(50) + "\n", 1],
      ["b\n", 1],
    ]);
  });
});

/** Seeded frames with gaps and text entries mixed in (see framedEntries). */
function mixedEntries(seed: number): { entries: Entry[]; texts: string[] } {
  const rand = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  return framedEntries(rand, { frames: 4, perFrame: 30, dropOneIn: 8, textOneIn: 8 });
}

describe("records as bytes", () => {
  it("recordBytes copies runs of a frame at once, with any one-byte terminator, the same as record by record", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { entries, texts } = mixedEntries(seed);
      const size = entries.reduce((n, e) => n + e.bytes + 1, 0);
      expect(recordBytes(entries, 0, entries.length, 0x0a, size).toString(), `seed ${seed}`).toBe(texts.join("\n") + "\n");
      expect(recordBytes(entries, 0, entries.length, 0x2c, size).toString(), `seed ${seed}`).toBe(texts.join(",") + ",");
      const from = seed % 7;
      const to = entries.length - (seed % 5);
      const part = entries.slice(from, to).reduce((n, e) => n + e.bytes + 1, 0);
      expect(recordBytes(entries, from, to, 0x00, part).toString()).toBe(texts.slice(from, to).join("\0") + "\0");
    }
  });

  it("packRecords gives the segments packLines gives for the same texts", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { entries, texts } = mixedEntries(seed);
      const got = packRecords(new EntryBatch(entries, 1), "\n", 600);
      const want = packLines(texts, "\n", 600);
      expect(got.map((s) => [text(s.data), s.records, s.bytes])).toEqual(want.map((s) => [text(s.data), s.records, s.bytes]));
    }
  });
});
