// LineSplitter: exact byte offsets (they become checkpoints), CRLF, overlong lines, invalid UTF-8, bounded memory.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LineFlags, LineSplitter, type LineSplitterOptions } from "../../../src/collector/line-splitter.js";
import { InvalidOptionError } from "../../../src/errors.js";

interface Line { text: string; start: number; end: number; flags: number }

const fixture = (name: string): Buffer => readFileSync(new URL(`../../fixtures/parse/${name}`, import.meta.url));

function split(input: Buffer | string, options: LineSplitterOptions = {}, chunkSize = Infinity): { lines: Line[]; splitter: LineSplitter } {
  const lines: Line[] = [];
  const splitter = new LineSplitter(options, (text, start, end, flags) => lines.push({ text, start, end, flags }));
  const buf = typeof input === "string" ? Buffer.from(input) : input;
  for (let i = 0; i < buf.length; i += Math.min(chunkSize, buf.length)) splitter.push(buf.subarray(i, i + chunkSize));
  splitter.flush();
  return { lines, splitter };
}

// Ranges must tile the input: every byte in exactly one line, in order.
function expectTiling(lines: Line[], total: number, from = 0): void {
  let pos = from;
  for (const l of lines) {
    expect(l.start).toBe(pos);
    expect(l.end).toBeGreaterThanOrEqual(l.start);
    pos = l.end;
  }
  expect(pos).toBe(total);
}

describe("LineSplitter", () => {
  it.each([
    ["LF", "a\nbb\n", [["a", 0, 2], ["bb", 2, 5]]],
    ["CRLF", "a\r\nbb\r\n", [["a", 0, 3], ["bb", 3, 7]]],
    ["mixed", "a\r\nb\nc\r\n", [["a", 0, 3], ["b", 3, 5], ["c", 5, 8]]],
    ["empty lines", "\n\r\n\nx\n", [["", 0, 1], ["", 1, 3], ["", 3, 4], ["x", 4, 6]]],
    ["lone CR stays in the text by default", "a\rb\n", [["a\rb", 0, 4]]],
    ["unterminated last line", "a\nlast", [["a", 0, 2], ["last", 2, 6]]],
    ["multibyte", "日本\n✓\n", [["日本", 0, 7], ["✓", 7, 11]]],
    ["NUL bytes", "a\0b\n\0\n", [["a\0b", 0, 4], ["\0", 4, 6]]],
  ] as const)("%s", (_name, input, expected) => {
    for (const chunkSize of [Infinity, 1, 2, 3]) {
      const { lines } = split(input, {}, chunkSize);
      expect(lines.map((l) => [l.text, l.start, l.end]), `chunkSize ${chunkSize}`).toEqual(expected);
    }
  });

  it("flags the flushed unterminated line and nothing else", () => {
    const { lines } = split("a\nb");
    expect(lines.map((l) => l.flags)).toEqual([0, LineFlags.UNTERMINATED]);
  });

  it("holds a partial line until its newline arrives", () => {
    const got: string[] = [];
    const s = new LineSplitter({}, (t) => got.push(t));
    s.push(Buffer.from("hel"));
    s.push(Buffer.from("lo"));
    expect(got).toEqual([]);
    expect(s.hasPending).toBe(true);
    expect(s.offset).toBe(0);
    expect(s.position).toBe(5);
    s.push(Buffer.from(" world\nnext"));
    expect(got).toEqual(["hello world"]);
    expect(s.offset).toBe(12);
    s.flush();
    expect(got).toEqual(["hello world", "next"]);
    expect(s.offset).toBe(16);
    expect(s.hasPending).toBe(false);
    s.flush(); // idempotent
    expect(got).toHaveLength(2);
  });

  it("starts offsets at startOffset (resuming from a checkpoint)", () => {
    const { lines } = split("x\ny\n", { startOffset: 1000 });
    expect(lines.map((l) => [l.start, l.end])).toEqual([[1000, 1002], [1002, 1004]]);
  });

  it("treats a lone CR as a line end only when asked, including a CR at a chunk edge", () => {
    const input = "a\rb\r\nc\rd";
    for (const chunkSize of [Infinity, 1, 2, 3, 4]) {
      const { lines } = split(input, { crIsLineEnd: true }, chunkSize);
      expect(lines.map((l) => [l.text, l.start, l.end]), `chunkSize ${chunkSize}`).toEqual([
        ["a", 0, 2], ["b", 2, 5], ["c", 5, 7], ["d", 7, 8],
      ]);
    }
    const trailing = split("a\r", { crIsLineEnd: true });
    expect(trailing.lines.map((l) => [l.text, l.start, l.end])).toEqual([["a", 0, 2]]);
  });

  it("strips a UTF-8 BOM at offset 0 from the text but counts its bytes", () => {
    const { lines } = split(Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0x0a, 0x62, 0x0a]), {}, 1);
    expect(lines.map((l) => [l.text, l.start, l.end])).toEqual([["a", 0, 5], ["b", 5, 7]]);
    const resumed = split(Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0x0a]), { startOffset: 10 });
    expect(resumed.lines[0]!.text).toBe("\uFEFFa"); // not at file start: kept as data
  });

  describe("overlong lines", () => {
    const long = "x".repeat(50);

    it("splits into pieces of maxLineBytes by default, nothing lost, offsets tiling", () => {
      for (const chunkSize of [Infinity, 7, 16, 64]) {
        const { lines, splitter } = split(`${long}\nok\n`, { maxLineBytes: 16 }, chunkSize);
        expect(lines.map((l) => l.text).join("|"), `chunkSize ${chunkSize}`).toBe("xxxxxxxxxxxxxxxx|xxxxxxxxxxxxxxxx|xxxxxxxxxxxxxxxx|xx|ok");
        expect(lines.map((l) => l.flags)).toEqual([LineFlags.SPLIT, LineFlags.SPLIT, LineFlags.SPLIT, 0, 0]);
        expectTiling(lines, 54);
        expect(splitter.stats.split).toBe(3);
      }
    });

    it("truncates when asked: end still covers the whole line", () => {
      for (const chunkSize of [Infinity, 5, 16]) {
        const { lines, splitter } = split(`${long}\r\nok\n`, { maxLineBytes: 16, overlong: "truncate" }, chunkSize);
        expect(lines.map((l) => [l.text, l.start, l.end, l.flags]), `chunkSize ${chunkSize}`).toEqual([
          ["x".repeat(16), 0, 52, LineFlags.TRUNCATED],
          ["ok", 52, 55, 0],
        ]);
        expect(splitter.stats.truncated).toBe(1);
      }
    });

    it("never cuts inside a UTF-8 character", () => {
      const text = "é".repeat(20); // 2 bytes each
      const { lines } = split(`a${text}\n`, { maxLineBytes: 16 });
      for (const l of lines) {
        expect(l.text).not.toContain("\uFFFD");
        expect(l.flags & LineFlags.INVALID_UTF8).toBe(0);
        expect(Buffer.byteLength(l.text)).toBeLessThanOrEqual(16);
      }
      expect(lines.map((l) => l.text).join("")).toBe(`a${text}`);
      expectTiling(lines, 42);
    });

    it("keeps memory bounded for 10 MB without a newline", () => {
      const max = 64 * 1024;
      let pieces = 0;
      let longest = 0;
      let maxPending = 0;
      const s = new LineSplitter({ maxLineBytes: max, overlong: "truncate" }, (text) => {
        pieces++;
        longest = Math.max(longest, text.length);
      });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      for (let i = 0; i < 160; i++) {
        s.push(chunk);
        maxPending = Math.max(maxPending, s.pendingBytes);
      }
      expect(maxPending).toBeLessThanOrEqual(max);
      expect(pieces).toBe(0); // truncate mode waits for the newline to learn the line's end
      s.push(Buffer.from("\nafter\n"));
      expect(pieces).toBe(2);
      expect(longest).toBe(max);
      expect(s.offset).toBe(160 * 64 * 1024 + 7);

      let splitPieces = 0;
      const t = new LineSplitter({ maxLineBytes: max }, () => splitPieces++);
      for (let i = 0; i < 160; i++) {
        t.push(chunk);
        expect(t.pendingBytes).toBeLessThanOrEqual(max);
      }
      expect(splitPieces).toBe(159); // split mode emits as it goes
    });
  });

  describe("invalid UTF-8", () => {
    it("replaces invalid bytes with U+FFFD, flags and counts them, and tells a literal U+FFFD apart", () => {
      const { lines, splitter } = split(fixture("invalid-utf8.bin"));
      const table = lines.map((l) => [l.text, (l.flags & LineFlags.INVALID_UTF8) !== 0]);
      expect(table).toEqual([
        ["valid café", false],
        ["bad \uFFFD byte", true],
        ["truncated \uFFFD seq", true],
        ["overlong \uFFFD\uFFFD slash", true],
        ["literal \uFFFD is valid", false],
        ["mixed \uFFFD and \uFFFD", true],
      ]);
      expect(splitter.stats.invalidUtf8).toBe(4);
      expectTiling(lines, fixture("invalid-utf8.bin").length);
    });

    it("decodes a multibyte character split across chunks without replacement", () => {
      const { lines } = split("✓✓\n", {}, 1);
      expect(lines[0]!.text).toBe("✓✓");
      expect(lines[0]!.flags).toBe(0);
    });
  });

  it("lines about maxLineBytes long, ended by CRLF, LF or not at all: the same lines and flags whatever the chunking", () => {
    // A `\r` at a chunk's end may be half of a `\r\n`: it must not count toward the limit before the next byte tells.
    const bodies = [15, 16, 17, 32].map((n) => "a".repeat(n));
    for (const overlong of ["split", "truncate"] as const) {
      for (const [i, body] of bodies.entries()) {
        for (const tail of ["\r\n", "\n", "\rb\n", "\r", "\r\r\n"]) {
          const input = `x\n${body}${tail}next\n`;
          const whole = split(input, { maxLineBytes: 16, overlong });
          for (let chunkSize = 1; chunkSize <= input.length; chunkSize++) {
            const got = split(input, { maxLineBytes: 16, overlong }, chunkSize);
            expect(got.lines, `${overlong} body ${i} tail ${JSON.stringify(tail)} chunk ${chunkSize}`).toEqual(whole.lines);
            expect(got.splitter.stats, `${overlong} body ${i} tail ${JSON.stringify(tail)} chunk ${chunkSize}`).toEqual(whole.splitter.stats);
          }
          expectTiling(whole.lines, Buffer.byteLength(input));
        }
      }
    }
    // The case itself: 16 bytes and CRLF, cut between `\r` and `\n`, is one whole line.
    const cut = split(`${"a".repeat(16)}\r\nnext\n`, { maxLineBytes: 16 }, 17).lines;
    expect(cut.map((l) => [l.text, l.start, l.end, l.flags])).toEqual([["a".repeat(16), 0, 18, 0], ["next", 18, 23, 0]]);
  });

  it("tiles every fixture of the corpus exactly, whatever the chunk size", () => {
    for (const name of ["app.ndjson", "crlf.log", "java-trace.log", "go-panic.log", "nul-bytes.bin", "invalid-utf8.bin"]) {
      const buf = fixture(name);
      const whole = split(buf).lines;
      for (const chunkSize of [1, 3, 17, 4096]) {
        const lines = split(buf, {}, chunkSize).lines;
        expect(lines, `${name} @${chunkSize}`).toEqual(whole);
        expectTiling(lines, buf.length);
      }
    }
  });

  it("strips CR from CRLF lines in the CRLF fixture", () => {
    const { lines } = split(fixture("crlf.log"));
    expect(lines.map((l) => l.text)).toEqual([
      "first line", '{"msg":"json with crlf","level":"info"}', 'level=warn msg="logfmt crlf"', "", "last line without newline",
    ]);
    expect(lines.every((l) => !l.text.includes("\r"))).toBe(true);
  });

  it.each([
    [{ maxLineBytes: 0 }, "Expected `maxLineBytes` to be an integer of at least 16, got `0` (number)"],
    [{ maxLineBytes: 1.5 }, "Expected `maxLineBytes` to be an integer of at least 16, got `1.5` (number)"],
    [{ overlong: "drop" }, 'Expected `overlong` to be "split" or "truncate", got `"drop"` (string)'],
    [{ startOffset: -1 }, "Expected `startOffset` to be a non-negative integer, got `-1` (number)"],
  ])("rejects %o", (options, message) => {
    expect(() => new LineSplitter(options as LineSplitterOptions, () => {})).toThrow(InvalidOptionError);
    expect(() => new LineSplitter(options as LineSplitterOptions, () => {})).toThrow(message);
  });
});

describe("LineSplitter lazyText", () => {
  /** Lines as a lazy consumer sees them: the text it would decode, and whether it had to. */
  function splitLazy(input: Buffer, chunkSize: number): { lines: { text: string; start: number; end: number; flags: number; lazy: boolean }[]; splitter: LineSplitter } {
    const lines: { text: string; start: number; end: number; flags: number; lazy: boolean }[] = [];
    const splitter = new LineSplitter({ lazyText: true }, (text, start, end, flags, bytes, s, e) => {
      const lazy = (flags & LineFlags.LAZY_TEXT) !== 0;
      if (lazy) expect(text).toBe("");
      // Decoded during the call, as a consumer must: the view is reused after it returns.
      lines.push({ text: lazy ? bytes.toString("utf8", s, e) : text, start, end, flags: flags & ~LineFlags.LAZY_TEXT, lazy });
    });
    for (let i = 0; i < input.length; i += chunkSize) splitter.push(Buffer.from(input.subarray(i, i + chunkSize)));
    splitter.flush();
    return { lines, splitter };
  }

  it("gives the same lines, offsets and flags as eager decoding, whatever the chunking", () => {
    const input = Buffer.concat([
      Buffer.from("\ufeffplain ascii\r\nGrüße 😀 日本語\n"),
      Buffer.from([0x62, 0x61, 0x64, 0xff, 0x0a]), // invalid UTF-8: flagged, in both modes
      Buffer.from("a literal \ufffd is valid\n\nlast without newline"),
    ]);
    let undecoded = 0;
    for (const chunkSize of [1, 2, 3, 5, 7, 16, 64, input.length]) {
      const eager = split(input, {}, chunkSize);
      const lazy = splitLazy(input, chunkSize);
      expect(lazy.lines.map(({ lazy: _, ...l }) => l), `chunk ${chunkSize}`).toEqual(eager.lines);
      expect(lazy.splitter.stats).toEqual(eager.splitter.stats);
      undecoded += lazy.lines.filter((l) => l.lazy).length;
    }
    expect(undecoded).toBeGreaterThan(0);
  });

  it("skips decoding only for lines whole in a chunk of valid UTF-8", () => {
    const input = Buffer.from("one\ntwo\nthré\n");
    const whole = splitLazy(input, input.length);
    expect(whole.lines.map((l) => l.lazy)).toEqual([true, true, true]);
    // A chunk boundary inside "é" makes both chunks invalid on their own: their lines are decoded as usual.
    const cut = input.indexOf(0xc3) + 1;
    const lines: boolean[] = [];
    const s = new LineSplitter({ lazyText: true }, (_t, _s, _e, flags) => lines.push((flags & LineFlags.LAZY_TEXT) !== 0));
    s.push(input.subarray(0, cut));
    s.push(input.subarray(cut));
    expect(lines).toEqual([false, false, false]);
    const bad = splitLazy(Buffer.from([0x61, 0x0a, 0xff, 0x0a]), 4);
    expect(bad.lines.map((l) => [l.lazy, (l.flags & LineFlags.INVALID_UTF8) !== 0])).toEqual([
      [false, false],
      [false, true],
    ]);
  });
});
