// Stopping at the credit: LineSplitter.halt() resumes exactly where it stopped, and LinePipeline holds the rest of a
// read until credit comes, so a line collector never sends past its window.
import { afterEach, describe, expect, it, vi } from "vitest";
import { LineFlags, LineSplitter, type LineSplitterOptions } from "../../../src/collector/line-splitter.js";
import { MultilineJoiner, type MultilineEvent } from "../../../src/collector/multiline.js";
import { LinePipeline, type LinePipelineOptions, type RecordOut } from "../../../src/collector/runtime/line-pipeline.js";

interface Line {
  text: string;
  start: number;
  end: number;
  flags: number;
}

/** Deterministic PRNG (mulberry32): failures reproduce. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lines of every kind the splitter tells apart: LF, CRLF, lone CR, empty, overlong, multibyte, invalid UTF-8, BOM. */
function input(random: () => number, lines: number): Buffer {
  const parts: Buffer[] = [Buffer.from([0xef, 0xbb, 0xbf])];
  const pieces = ["a", "日本", "✓", "x".repeat(40), "\r", "é", "\u0000"];
  for (let i = 0; i < lines; i++) {
    let text = "";
    const n = Math.floor(random() * 6);
    for (let k = 0; k < n; k++) text += pieces[Math.floor(random() * pieces.length)];
    parts.push(Buffer.from(text));
    if (random() < 0.05) parts.push(Buffer.from([0xc3])); // a lone lead byte: invalid UTF-8
    parts.push(Buffer.from(random() < 0.3 ? "\r\n" : random() < 0.1 ? "\r" : "\n"));
  }
  parts.push(Buffer.from("unterminated"));
  return Buffer.concat(parts);
}

/** Every line of `buf` pushed in `chunks`-sized chunks; `halt(i)` says whether to halt after the i-th line. */
function run(buf: Buffer, options: LineSplitterOptions, chunk: number, halt: (i: number) => boolean): Line[] {
  const lines: Line[] = [];
  /** halt() was called in this push: no further line may come out of it. */
  let halted = false;
  const splitter = new LineSplitter(options, (text, start, end, flags, bytes, s, e) => {
    if (halted) throw new Error(`line ${lines.length} came out of a push after a halt`);
    // LAZY_TEXT only says when the text was decoded; the line is the same.
    lines.push({ text: flags & LineFlags.LAZY_TEXT ? bytes.toString("utf8", s, e) : text, start, end, flags: flags & ~LineFlags.LAZY_TEXT });
    if (halt(lines.length)) {
      halted = true;
      splitter.halt();
    }
  });
  for (let i = 0; i < buf.length; i += chunk) {
    let rest = buf.subarray(i, Math.min(buf.length, i + chunk));
    for (;;) {
      const used = splitter.push(rest);
      halted = false;
      if (used === rest.length) break;
      rest = rest.subarray(used);
    }
  }
  splitter.flush();
  return lines;
}

describe("LineSplitter.halt()", () => {
  const cases: Array<[string, LineSplitterOptions]> = [
    ["defaults", {}],
    ["lazy text", { lazyText: true }],
    ["lone CR ends lines", { crIsLineEnd: true }],
    ["overlong lines split", { maxLineBytes: 16 }],
    ["overlong lines truncated", { maxLineBytes: 16, overlong: "truncate" }],
    ["split, lone CR, lazy", { maxLineBytes: 16, crIsLineEnd: true, lazyText: true }],
  ];
  it.each(cases)("%s: halting after any line and pushing the rest again gives the lines of one uninterrupted push", (_name, options) => {
    for (let seed = 1; seed <= 10; seed++) {
      const random = rng(seed);
      const buf = input(random, 300);
      const chunk = 1 + Math.floor(random() * 200);
      const expected = run(buf, options, chunk, () => false);
      expect(run(buf, options, chunk, () => true), `seed ${seed}, halting after every line`).toEqual(expected);
      expect(run(buf, options, chunk, () => random() < 0.2), `seed ${seed}, halting at random`).toEqual(expected);
    }
  });

  it("returns how many bytes it consumed: up to the end of the line it halted after", () => {
    const splitter = new LineSplitter({}, (text) => {
      if (text === "b") splitter.halt();
    });
    expect(splitter.push(Buffer.from("a\nb\nc\n"))).toBe(4);
    expect(splitter.position).toBe(4);
    expect(splitter.offset).toBe(4);
    expect(splitter.push(Buffer.from("c\n"))).toBe(2);
  });

  it("a halt outside a push is forgotten", () => {
    const texts: string[] = [];
    const splitter = new LineSplitter({}, (text) => texts.push(text));
    splitter.push(Buffer.from("tail"));
    splitter.halt();
    splitter.flush();
    expect(splitter.push(Buffer.from("a\nb\n"))).toBe(4);
    expect(texts).toEqual(["tail", "a", "b"]);
  });
});

/** A channel with `credit` records of credit; `give(n)` adds some. */
class FakeOut implements RecordOut {
  readonly records: string[] = [];
  private readonly buf = Buffer.alloc(1 << 16);
  constructor(private credit: number) {}
  get hasCredit(): boolean {
    return this.credit > 0;
  }
  give(n: number): void {
    this.credit += n;
  }
  push(json: string): boolean {
    this.records.push(json);
    this.credit--;
    return this.hasCredit;
  }
  dropOversized(): void {}
  reserve(): Buffer {
    return this.buf;
  }
  readonly recordStart = 0;
  commit(end: number): void {
    this.push(this.buf.toString("utf8", 0, end));
  }
}

const messages = (out: FakeOut): string[] => out.records.map((r) => (JSON.parse(r) as { message: string }).message);
const numbered = (from: number, n: number): string => Array.from({ length: n }, (_, i) => `${from + i}\n`).join("");

describe("LinePipeline credit", () => {
  const options = (more: Partial<LinePipelineOptions> = {}): LinePipelineOptions => ({ parser: "plain", context: { source: "s", host: "h" }, ...more });

  it.each(["plain", "json"] as const)("%s: stops at the line that spends the credit, holds the rest, and goes on from there", (parser) => {
    const out = new FakeOut(10);
    const p = new LinePipeline(options({ parser }), out);
    const lines = parser === "json" ? (from: number, n: number) => Array.from({ length: n }, (_, i) => `{"message":"${from + i}"}\n`).join("") : numbered;
    expect(p.push(Buffer.from(lines(0, 100)))).toBe(false);
    expect(out.records).toHaveLength(10);
    expect(p.holding).toBe(true);
    // Another read while held (only after a command exited): queued behind, not split.
    expect(p.push(Buffer.from(lines(100, 5)))).toBe(false);
    expect(out.records).toHaveLength(10);
    out.give(50);
    expect(p.resume()).toBe(false);
    expect(out.records).toHaveLength(60);
    out.give(1000);
    expect(p.resume()).toBe(true);
    expect(p.holding).toBe(false);
    expect(messages(out)).toEqual(Array.from({ length: 105 }, (_, i) => String(i)));
    expect(p.counters.linesRead).toBe(105);
  });

  it("a read that finds no credit is held whole", () => {
    const out = new FakeOut(0);
    const p = new LinePipeline(options(), out);
    expect(p.push(Buffer.from("a\nb\n"))).toBe(false);
    expect(out.records).toEqual([]);
    expect(p.counters).toMatchObject({ bytesRead: 4, linesRead: 0 });
  });

  it("multiline: an event that spends the credit stops the split after the line that closed it", () => {
    const out = new FakeOut(2);
    const p = new LinePipeline(options({ multiline: { startPattern: "^start", timeoutMs: 0 } }), out);
    const text = Array.from({ length: 20 }, (_, i) => `start ${i}\n more\n`).join("");
    expect(p.push(Buffer.from(text))).toBe(false);
    expect(messages(out)).toEqual(["start 0\n more", "start 1\n more"]);
    out.give(100);
    expect(p.resume()).toBe(true);
    p.end();
    expect(messages(out)).toEqual(Array.from({ length: 20 }, (_, i) => `start ${i}\n more`));
  });

  it("end() sends what is held whatever the credit, then the unterminated last line", () => {
    const out = new FakeOut(3);
    const p = new LinePipeline(options(), out);
    p.push(Buffer.from(`${numbered(0, 10)}last`));
    expect(out.records).toHaveLength(3);
    p.end();
    expect(messages(out)).toEqual([...Array.from({ length: 10 }, (_, i) => String(i)), "last"]);
    expect(p.holding).toBe(false);
  });
});

describe("multiline idle timeout while the input is held back", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("MultilineJoiner: time between pauseIdle() and resumeIdle() is not idle; after it the event gets a full timeout", () => {
    vi.useFakeTimers();
    const events: MultilineEvent[] = [];
    const j = new MultilineJoiner({ startPattern: "^start", timeoutMs: 100 }, (e) => events.push(e));
    j.push("start 1", 0, 8);
    j.pauseIdle();
    vi.advanceTimersByTime(10_000);
    expect(events).toEqual([]);
    j.resumeIdle();
    j.push(" more", 8, 14);
    expect(events).toEqual([]);
    vi.advanceTimersByTime(99);
    expect(events).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(events).toEqual([{ text: "start 1\n more", start: 0, end: 14, lines: 2, truncated: false }]);
    j.close();
  });

  it("MultilineJoiner: while its input is still being read, the event is not idle; a full timeout after the last such answer", () => {
    vi.useFakeTimers();
    const events: MultilineEvent[] = [];
    // A file collector's answer: its file is not read to its end (the read after a resume, or the next chunk, is late).
    let reading = true;
    const j = new MultilineJoiner({ startPattern: "^start", timeoutMs: 100 }, (e) => events.push(e), undefined, () => reading);
    j.push("start 1", 0, 8);
    vi.advanceTimersByTime(10_000);
    expect(events).toEqual([]);
    // The late read comes back with the event's next line, and the file is read to its end.
    j.push(" more", 8, 14);
    reading = false;
    vi.advanceTimersByTime(99);
    expect(events).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(events).toEqual([{ text: "start 1\n more", start: 0, end: 14, lines: 2, truncated: false }]);
    expect(j.stats.timedOut).toBe(1);
    j.close();
  });

  it("LinePipeline: an event open when the credit ran out waits for its held lines, however long", () => {
    vi.useFakeTimers();
    const out = new FakeOut(1);
    const p = new LinePipeline(
      { parser: "plain", context: { source: "s", host: "h" }, multiline: { startPattern: "^start", timeoutMs: 100 } },
      out,
    );
    // The second start line emits the first event, which spends the credit: "start 1" is open, " more" is held.
    expect(p.push(Buffer.from("start 0\nstart 1\n more\n"))).toBe(false);
    p.pause();
    vi.advanceTimersByTime(10_000);
    expect(messages(out)).toEqual(["start 0"]);
    out.give(10);
    expect(p.resume()).toBe(true);
    // Not idle until the input is read again (the command collector says so once both its pipes are).
    vi.advanceTimersByTime(10_000);
    expect(messages(out)).toEqual(["start 0"]);
    p.readingAgain();
    vi.advanceTimersByTime(100);
    expect(messages(out)).toEqual(["start 0", "start 1\n more"]);
    p.end();
  });
});
