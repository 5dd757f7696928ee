// MultilineJoiner: presets over real-looking traces, custom patterns, limits, offsets, and the idle timer.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LineSplitter } from "../../../src/collector/line-splitter.js";
import { MultilineJoiner, type MultilineEvent, type MultilineSpec } from "../../../src/collector/multiline.js";
import { buildRecord, createParser } from "../../../src/collector/parse/index.js";
import { InvalidOptionError } from "../../../src/errors.js";

function join(spec: MultilineSpec, input: Buffer | string): { events: MultilineEvent[]; joiner: MultilineJoiner; total: number } {
  const events: MultilineEvent[] = [];
  const joiner = new MultilineJoiner(spec, (e) => events.push(e));
  const buf = typeof input === "string" ? Buffer.from(input) : input;
  const splitter = new LineSplitter({}, (line, start, end) => joiner.push(line, start, end));
  splitter.push(buf);
  splitter.flush();
  joiner.close();
  return { events, joiner, total: buf.length };
}

const fixture = (name: string): Buffer => readFileSync(new URL(`../../fixtures/parse/${name}`, import.meta.url));

function expectTiling(events: MultilineEvent[], total: number): void {
  let pos = 0;
  for (const e of events) {
    expect(e.start).toBe(pos);
    pos = e.end;
  }
  expect(pos).toBe(total);
}

const summary = (events: MultilineEvent[]) => events.map((e) => [e.text.split("\n")[0], e.lines]);

afterEach(() => {
  vi.useRealTimers();
});

describe("presets over the corpus", () => {
  it("java: log line + exception header + frames + Caused by + ... N more + Suppressed in one event", () => {
    const { events, total } = join("java", fixture("java-trace.log"));
    expect(summary(events)).toEqual([
      ["2024-01-15 10:00:00,123 INFO  [main] c.e.shop.Application - Started Application in 3.2 seconds", 1],
      ["2024-01-15 10:00:05,456 ERROR [http-nio-8080-exec-1] c.e.shop.OrderController - Request processing failed", 18],
      ["2024-01-15 10:00:05,789 WARN  [http-nio-8080-exec-2] c.e.shop.OrderController - Retrying order 42", 1],
      ["2024-01-15 10:00:06,001 INFO  [main] c.e.shop.Application - Health check ok", 1],
    ]);
    const trace = events[1]!.text;
    expect(trace).toContain("\nCaused by: java.lang.IllegalStateException: order 42 has no items\n");
    expect(trace).toContain("\n\t... 12 more\n");
    expect(trace.endsWith("\t... 15 more")).toBe(true);
    expectTiling(events, total);
  });

  it("python: logger.exception traceback with chained exceptions, blank lines inside, trailing blank alone", () => {
    const { events, total } = join("python", fixture("python-traceback.log"));
    expect(summary(events)).toEqual([
      ["2024-01-15 10:00:00,123 INFO worker: started job 7", 1],
      ["2024-01-15 10:00:01,456 ERROR worker: job 7 failed", 17],
      ["2024-01-15 10:00:02,000 ERROR worker: job 8 crashed", 12],
      ["", 1], // the blank line after the last traceback: its own event, skipped later as blank
      ["2024-01-15 10:00:03,000 WARNING worker: queue is slow", 1],
    ]);
    expect(events[1]!.text).toContain("\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback");
    expect(events[1]!.text.endsWith("worker.JobError: job 7 failed")).toBe(true);
    expect(events[2]!.text).toContain("The above exception was the direct cause");
    expect(events[2]!.text.endsWith("RuntimeError: wrapped")).toBe(true);
    expectTiling(events, total);
  });

  it("go: panic with signal line, goroutine dump, blank lines between goroutines, exit status", () => {
    const { events, total } = join("go", fixture("go-panic.log"));
    expect(summary(events)).toEqual([
      ["2024/01/15 10:00:00 INFO server listening addr=:8080", 1],
      ["panic: runtime error: invalid memory address or nil pointer dereference", 19],
      ["2024/01/15 10:00:01 INFO server restarting", 1],
      ["fatal error: all goroutines are asleep - deadlock!", 5],
      ["", 1],
      ["2024/01/15 10:00:02 INFO server listening addr=:8080", 1],
    ]);
    expect(events[1]!.text).toContain("\n\ngoroutine 1 [IO wait]:\n");
    expect(events[1]!.text.endsWith("exit status 2")).toBe(true);
    expectTiling(events, total);
  });

  it("go: runtime prelude lines before fatal error stay with the crash", () => {
    const input = [
      "runtime: goroutine stack exceeds 1000000000-byte limit",
      "runtime: sp=0xc020160398 stack=[0xc020160000, 0xc040160000]",
      "fatal error: stack overflow",
      "",
      "runtime stack:",
      "runtime.throw({0x4b7f2e?, 0x0?})",
      "\t/usr/local/go/src/runtime/panic.go:1077 +0x5c",
      "",
      "goroutine 1 [running]:",
      "main.f(...)",
      "\t/app/main.go:4 +0x1c",
      "next log line",
      "",
    ].join("\n");
    const { events } = join("go", input);
    expect(events.map((e) => e.lines)).toEqual([11, 1]);
  });

  it("java: a bare java.lang.Exception, Error or Throwable header continues the event too", () => {
    for (const header of ["java.lang.Exception: plain", "java.lang.Error", "java.lang.Throwable: t", "com.acme.Exception: x"]) {
      const { events } = join("java", `2024-01-15 10:00:00,123 ERROR [main] App - failed\n${header}\n\tat a.b(C.java:1)\nnext line\n`);
      expect(events.map((e) => e.lines), header).toEqual([3, 1]);
    }
    // A dotted name that only ends like one, or a plain word, starts an event.
    const { events } = join("java", "first\ncom.acme.Errors: no\nException: no\n");
    expect(events.map((e) => e.lines)).toEqual([1, 1, 1]);
  });

  it("parses a joined Java event into one record with the level of its first line", () => {
    const { events } = join("java", fixture("java-trace.log"));
    const parse = createParser("plain");
    const r = buildRecord(parse(events[1]!.text), { now: 0, filePath: "/logs/app.log", offset: events[1]!.start });
    expect(r.log?.level).toBe("error");
    expect(r.message.split("\n")).toHaveLength(18);
    expect(r.log?.offset).toBe(events[0]!.end);
  });
});

describe("custom patterns", () => {
  const input = "[1] a\n  b\n  c\n[2] d\n[3] e\n  f\n";

  it.each([
    ["startPattern", { startPattern: "^\\[" }],
    ["startPattern RegExp", { startPattern: /^\[/g }],
    ["continuePattern", { continuePattern: "^\\s" }],
    ["startPattern negated", { startPattern: "^\\s", negate: true }],
    ["continuePattern negated", { continuePattern: /^\[/, negate: true }],
  ] as const)("%s", (_name, spec) => {
    const { events, total } = join(spec, input);
    expect(events.map((e) => e.text)).toEqual(["[1] a\n  b\n  c", "[2] d", "[3] e\n  f"]);
    expectTiling(events, total);
  });

  it("an orphan continuation line at the very start opens an event (e.g. resuming mid-trace)", () => {
    const { events } = join({ startPattern: "^\\[" }, "  orphan\n[1] a\n");
    expect(events.map((e) => e.text)).toEqual(["  orphan", "[1] a"]);
  });
});

describe("limits", () => {
  it("maxLines: emits the collected lines flagged truncated, the rest continues in the next event", () => {
    const lines = ["start", ...Array.from({ length: 12 }, (_, i) => `  cont ${i}`)];
    const { events, joiner, total } = join({ startPattern: "^start", maxLines: 5 }, lines.join("\n") + "\n");
    expect(events.map((e) => [e.lines, e.truncated])).toEqual([[5, true], [5, true], [3, false]]);
    expect(events.map((e) => e.text).join("\n")).toBe(lines.join("\n")); // nothing lost
    expect(joiner.stats).toMatchObject({ events: 3, truncated: 2 });
    expectTiling(events, total);
  });

  it("maxBytes counts bytes including terminators", () => {
    // "x\n" = 2 bytes, "  é\n" = 5 bytes
    const { events } = join({ startPattern: "^x", maxBytes: 12 }, "x\n  é\n  é\n  é\nx\n");
    expect(events.map((e) => [e.end - e.start, e.truncated])).toEqual([[12, true], [5, false], [2, false]]);
  });

  it("defaults maxLines to 500", () => {
    const text = ["s", ...Array.from({ length: 600 }, () => " c")].join("\n");
    const { events } = join({ startPattern: "^s" }, text);
    expect(events.map((e) => e.lines)).toEqual([500, 101]);
  });
});

describe("idle timeout", () => {
  it("emits the open event timeoutMs after the last line, driven by fake timers", () => {
    vi.useFakeTimers();
    const events: MultilineEvent[] = [];
    const j = new MultilineJoiner({ preset: "java", timeoutMs: 1000 }, (e) => events.push(e));
    j.push("ERROR boom", 0, 11);
    vi.advanceTimersByTime(600);
    j.push("\tat a.b(C.java:1)", 11, 29); // resets the idle clock
    vi.advanceTimersByTime(999);
    expect(events).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(events).toHaveLength(1);
    expect(events[0]).toEqual({ text: "ERROR boom\n\tat a.b(C.java:1)", start: 0, end: 29, lines: 2, truncated: false });
    expect(j.stats.timedOut).toBe(1);
    expect(j.pending).toBe(false);
    // a new event after the timeout is not glued to the old one, even if it looks like a continuation
    j.push("\tat late", 29, 38);
    vi.advanceTimersByTime(1000);
    expect(events.map((e) => e.text)).toEqual(["ERROR boom\n\tat a.b(C.java:1)", "\tat late"]);
    j.close();
  });

  it("holds blank lines after an event only up to its limits, then emits (they must not pile up without bound)", () => {
    const input = "panic: x\n" + "\n".repeat(12) + "goroutine 1 [running]:\n";
    const { events, total } = join({ preset: "go", maxLines: 5 }, input);
    expectTiling(events, total);
    // The panic and four held lines fill five lines: the fifth blank line ends the panic; the held ones go alone.
    expect(events[0]).toMatchObject({ text: "panic: x", lines: 1, truncated: false });
    expect(events.every((e) => e.lines <= 5)).toBe(true);
    const trace = 'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\nValueError: boom\n';
    const py = join({ preset: "python", maxBytes: 128 }, trace + "\n".repeat(100));
    expectTiling(py.events, py.total);
    expect(py.events[0]).toMatchObject({ text: trace.trimEnd(), lines: 3, truncated: false });
    // Emitted as they come, not kept until the end: 1,000 blank lines after a panic, nothing flushed yet.
    const seen: MultilineEvent[] = [];
    const j = new MultilineJoiner({ preset: "go", maxLines: 5 }, (e) => seen.push(e));
    let at = 0;
    j.push("panic: y", at, (at += 9));
    for (let i = 0; i < 1_000; i++) j.push("", at, (at += 1));
    expect(seen.length).toBeGreaterThan(990);
    j.close();
    expect(seen.reduce((n, e) => n + e.lines, 0)).toBe(1_001);
  });

  it("emits held blank lines on timeout too, and resets preset state", () => {
    vi.useFakeTimers();
    const events: MultilineEvent[] = [];
    const j = new MultilineJoiner("go", (e) => events.push(e));
    j.push("panic: x", 0, 9);
    j.push("", 9, 10);
    vi.advanceTimersByTime(1000);
    expect(events.map((e) => [e.text, e.start, e.end])).toEqual([["panic: x", 0, 9], ["", 9, 10]]);
    j.push("main.main()", 10, 22); // would continue a panic, but the panic is over
    j.flush();
    expect(events[2]).toMatchObject({ text: "main.main()", lines: 1 });
    j.close();
  });

  it("timeoutMs: 0 disables the timer", () => {
    vi.useFakeTimers();
    const events: MultilineEvent[] = [];
    const j = new MultilineJoiner({ preset: "java", timeoutMs: 0 }, (e) => events.push(e));
    j.push("x", 0, 2);
    vi.advanceTimersByTime(60_000);
    expect(events).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
    j.close();
    expect(events).toHaveLength(1);
  });

  /** An event opened by one line, whose idle timer then runs overdue (2.5 s after the line, timeout 1 s). */
  function lateTimer(): { j: MultilineJoiner; events: MultilineEvent[] } {
    vi.useFakeTimers();
    const events: MultilineEvent[] = [];
    const j = new MultilineJoiner({ preset: "java", timeoutMs: 1000 }, (e) => events.push(e));
    j.push("ERROR boom", 0, 11);
    // The process waits for a CPU: the clock moves on while the timer cannot run.
    vi.setSystemTime(Date.now() + 1500);
    vi.advanceTimersByTime(1000);
    return { j, events };
  }

  it("a timer that runs late looks again after the input had its turn: lines read by then join the event", () => {
    const { j, events } = lateTimer();
    expect(events).toHaveLength(0);
    // The next line waited in the pipe; the poll phase reads it before the timer's second look.
    j.push("\tat a.b(C.java:1)", 11, 29);
    vi.advanceTimersByTime(1);
    expect(events).toHaveLength(0);
    vi.advanceTimersByTime(1000);
    expect(events.map((e) => e.text)).toEqual(["ERROR boom\n\tat a.b(C.java:1)"]);
    expect(j.stats.timedOut).toBe(1);
    j.close();
  });

  it("a timer that runs late with nothing read by its second look emits the event then", () => {
    const { j, events } = lateTimer();
    vi.advanceTimersByTime(1);
    expect(events.map((e) => e.text)).toEqual(["ERROR boom"]);
    expect(j.stats.timedOut).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    j.push("\tat late", 11, 20);
    vi.advanceTimersByTime(1000);
    expect(events.map((e) => e.text)).toEqual(["ERROR boom", "\tat late"]);
    j.close();
  });

  it("close() during the second look cancels it", () => {
    const { j, events } = lateTimer();
    expect(vi.getTimerCount()).toBe(1);
    j.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(events).toHaveLength(1);
    expect(j.stats.timedOut).toBe(0);
  });

  it("close() clears the timer", () => {
    vi.useFakeTimers();
    const j = new MultilineJoiner("java", () => {});
    j.push("x", 0, 2);
    expect(vi.getTimerCount()).toBe(1);
    j.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("validation", () => {
  it.each([
    ["xml", 'Expected `multiline` to be "java", "python", "go", { preset } or { startPattern | continuePattern }, got'],
    [{}, "Expected `multiline` to have exactly one of `startPattern` and `continuePattern`, got neither"],
    [{ startPattern: "a", continuePattern: "b" }, "got both"],
    [{ startPattern: "(" }, 'Expected `multiline.startPattern` to be a valid regular expression, got `"("` (string)'],
    [{ continuePattern: 3 }, "Expected `multiline.continuePattern` to be a string or a RegExp, got `3` (number)"],
    [{ startPattern: "a", negate: "yes" }, 'Expected `multiline.negate` to be a boolean, got `"yes"` (string)'],
    [{ startPattern: "a", maxLines: 0 }, "Expected `multiline.maxLines` to be an integer of at least 1, got `0` (number)"],
    [{ startPattern: "a", maxBytes: -1 }, "Expected `multiline.maxBytes` to be an integer of at least 1, got `-1` (number)"],
    [{ startPattern: "a", timeoutMs: 1.5 }, "Expected `multiline.timeoutMs` to be an integer of at least 0, got `1.5` (number)"],
    [{ preset: "ruby" }, 'Expected `multiline.preset` to be "java", "python" or "go", got `"ruby"` (string)'],
  ])("rejects %o", (spec, message) => {
    expect(() => new MultilineJoiner(spec as MultilineSpec, () => {})).toThrow(InvalidOptionError);
    expect(() => new MultilineJoiner(spec as MultilineSpec, () => {})).toThrow(message);
  });
});
