// packLines: records (text or UTF-8 bytes) joined into bounded segments without splitting one, in order.
import { describe, expect, it } from "vitest";
import { packLines } from "../../../src/sinks/transport/segments.js";

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
