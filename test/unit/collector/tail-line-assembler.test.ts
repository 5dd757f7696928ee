// The tailer's adapter over LineSplitter: the positions the read loop relies on (position, lineStart, held bytes).
import { describe, expect, it } from "vitest";
import { LineAssembler, type AssembledLine } from "../../../src/collector/tail/line-assembler.js";

function push(assembler: LineAssembler, text: string | Buffer): AssembledLine[] {
  const out: AssembledLine[] = [];
  assembler.push(typeof text === "string" ? Buffer.from(text) : text, out);
  return out;
}

describe("LineAssembler", () => {
  it("returns each chunk's complete lines with absolute offsets and tracks the held partial", () => {
    const a = new LineAssembler(1024, "split", 100);
    expect(push(a, "one\ntw").map((l) => [l.text, l.offset, l.end])).toEqual([["one", 100, 104]]);
    expect(a).toMatchObject({ position: 106, lineStart: 104, heldBytes: 2, hasPartial: true });
    expect(push(a, "o\r\n").map((l) => [l.text, l.offset, l.end])).toEqual([["two", 104, 109]]);
    expect(a).toMatchObject({ position: 109, lineStart: 109, heldBytes: 0, hasPartial: false });
  });

  it("takePartial() emits the held bytes flagged partial and continues after them", () => {
    const a = new LineAssembler(1024, "split");
    push(a, "abc");
    expect(a.takePartial()).toMatchObject({ text: "abc", offset: 0, end: 3, partial: true });
    expect(a.takePartial()).toBeUndefined();
    expect(push(a, "def\n")[0]).toMatchObject({ text: "def", offset: 3, end: 7, partial: false });
  });

  it("reset() drops held bytes and restarts at the given offset (truncation)", () => {
    const a = new LineAssembler(1024, "split", 0);
    push(a, "held without newline");
    a.reset(0);
    expect(a).toMatchObject({ position: 0, lineStart: 0, heldBytes: 0 });
    expect(push(a, "fresh\n")[0]).toMatchObject({ text: "fresh", offset: 0, end: 6 });
  });

  it("truncate mode keeps at most maxLineBytes in memory and flags the line", () => {
    const a = new LineAssembler(16, "truncate");
    for (let i = 0; i < 100; i++) {
      expect(push(a, "x".repeat(1000))).toEqual([]);
      expect(a.heldBytes).toBeLessThanOrEqual(16);
    }
    const [line] = push(a, "\n");
    expect(line).toMatchObject({ text: "x".repeat(16), truncated: true, offset: 0, end: 100_001 });
  });

  it("flags invalid UTF-8", () => {
    const a = new LineAssembler(1024, "split");
    expect(push(a, Buffer.from([0xc3, 0x28, 0x0a]))[0]).toMatchObject({ invalidUtf8: true, text: "\uFFFD(" });
  });
});
