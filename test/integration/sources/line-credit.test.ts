// File and command collectors stop at their credit window: with tiny lines, one 64 KiB read is thousands of records,
// and finishing it after the credit ran out made the host stop reading the collector (`overCreditPauses`). They must
// stop at the line that spends the credit, hold the rest, and go on from there when credit returns.
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileTailer } from "../../../src/collector/tail/tailer.js";
import type { TailLine } from "../../../src/collector/tail/types.js";
import { Aggregator, CommandSource, FileSource, MemorySink, type SourceExitEvent } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

/** Small on purpose: a 64 KiB read of tiny lines is forty times this. */
const WINDOW = 256;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-credit-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** "0\n1\n…": lines of 2 to 6 bytes. */
const numbers = (n: number): string => Array.from({ length: n }, (_, i) => `${i}\n`).join("");
const upTo = (n: number): string[] => Array.from({ length: n }, (_, i) => String(i));

/** Prints `errN` numbered lines on stderr, then `n` on stdout; then exits, or with "hold" waits for SIGTERM. */
const PRINTER = `
const [n, errN, mode] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]];
let s = "";
for (let i = 0; i < errN; i++) s += i + "\\n";
process.stderr.write(s);
s = "";
for (let i = 0; i < n; i++) s += i + "\\n";
process.stdout.write(s);
if (mode === "hold") {
  process.on("SIGTERM", () => process.exit(0));
  setInterval(() => {}, 1 << 30);
}
`;

/**
 * Incarnation k (counted in files in `dir`) prints n lines "k:0", "k:1"… at once; the first then exits, the others
 * stay.
 */
const INCARNATIONS = `
const fs = require("node:fs");
const [n, dir] = [Number(process.argv[1]), process.argv[2]];
let k = 1;
while (fs.existsSync(dir + "/run" + k)) k++;
fs.writeFileSync(dir + "/run" + k, "");
let s = "";
for (let i = 0; i < n; i++) s += k + ":" + i + "\\n";
process.stdout.write(s);
if (k > 1) setInterval(() => {}, 1 << 30);
`;
const incarnation = (k: number, n: number): string[] => Array.from({ length: n }, (_, i) => `${k}:${i}`);

function aggregator(mem: MemorySink, extra: { checkpointDir?: string } = {}): Aggregator {
  return new Aggregator({
    ...extra,
    batch: { maxRecords: 200, maxWaitMs: 2 },
    queue: { maxRecords: 1_000, whenFull: "block" },
    credit: { records: WINDOW },
  }).addSink(mem);
}

/**
 * With the sink blocked, wait until the collector has stopped: it spent its window (the host's inbox holds it) and
 * every line it has read so far arrived (its own `linesRead`, from STATS, equals what the host received), after
 * reading at least `bytes` of its input. Or until the host stopped reading it for overrunning its credit, which the
 * caller then reports.
 */
async function stalled(agg: Aggregator, name: string, bytes = 0): Promise<void> {
  const source = () => agg.metrics().sources[name]!;
  await waitFor(
    () => {
      const s = source();
      return (s.collector.overCreditPauses ?? 0) > 0 || (s.waiting >= WINDOW && s.linesRead === s.emitted && s.bytesRead >= bytes);
    },
    { timeout: 20_000, message: () => `the collector to stall at its credit window, got ${JSON.stringify(source())}` },
  );
}

/** At the stall: nothing past the credit (the host never paused the channel), and the inbox is at most the window. */
function expectWithinCredit(agg: Aggregator, name: string): void {
  const s = agg.metrics().sources[name]!;
  expect(s.collector.overCreditPauses ?? 0, `overCreditPauses (emitted ${s.emitted}, waiting ${s.waiting})`).toBe(0);
  expect(s.waiting, "records waiting in the host's inbox").toBeLessThanOrEqual(WINDOW);
}

describe("line collectors stop at their credit", () => {
  it("a file of tiny lines: stops at the window, then ships every line once, in order, and checkpoints the end", async () => {
    const total = 30_000;
    const file = join(dir, "tiny.log");
    writeFileSync(file, numbers(total));
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = aggregator(mem, { checkpointDir: join(dir, "cp") }).addSource(
      new FileSource({ name: "tiny", paths: [file], pollIntervalMs: 20 }),
    );
    await agg.start();
    await stalled(agg, "tiny");
    expectWithinCredit(agg, "tiny");
    mem.unblock();
    await mem.waitForCount(total, { timeout: 30_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.map((r) => r.message)).toEqual(upTo(total));
    expect(report.sources.tiny).toMatchObject({ emitted: total, linesRead: total, bytesRead: Buffer.byteLength(numbers(total)) });
    expect(report.sources.tiny!.collector.overCreditPauses ?? 0).toBe(0);
    // Offsets are those of the lines, and the checkpoint reached the end of the last (acked) one.
    expect(mem.records[total - 1]!.log!.offset).toBe(Buffer.byteLength(numbers(total - 1)));
    const cp = JSON.parse(readFileSync(join(dir, "cp", "tiny.json"), "utf8")) as { files: Array<{ offset: number }> };
    expect(cp.files[0]!.offset).toBe(Buffer.byteLength(numbers(total)));
  });

  it("a file stopped while held back resumes at a line it committed from acks: nothing lost, nothing settled twice", async () => {
    const total = 30_000;
    const file = join(dir, "tiny.log");
    writeFileSync(file, numbers(total));
    const cpDir = join(dir, "cp");
    const first = new MemorySink({ name: "mem" });
    const agg1 = aggregator(first, { checkpointDir: cpDir }).addSource(new FileSource({ name: "tiny", paths: [file], pollIntervalMs: 20 }));
    await agg1.start();
    await first.waitForCount(3_000, { timeout: 20_000 });
    first.block();
    await stalled(agg1, "tiny");
    expectWithinCredit(agg1, "tiny");
    // What is queued or held when it stops is not delivered: it must come again, from a checkpointed line end.
    await agg1.stop({ timeoutMs: 1_000 });
    const delivered = first.records.map((r) => Number(r.message));
    expect(delivered).toEqual(delivered.map((_, i) => i));
    const cp = JSON.parse(readFileSync(join(cpDir, "tiny.json"), "utf8")) as { files: Array<{ offset: number }> };
    const offset = cp.files[0]!.offset;
    // A line end, and no further than the last delivered line.
    const resumeAt = numbers(total).slice(0, offset).split("\n").length - 1;
    expect(Buffer.byteLength(numbers(resumeAt))).toBe(offset);
    expect(resumeAt).toBeLessThanOrEqual(delivered.length);
    expect(resumeAt).toBeGreaterThan(0);

    const second = new MemorySink({ name: "mem" });
    const agg2 = aggregator(second, { checkpointDir: cpDir }).addSource(new FileSource({ name: "tiny", paths: [file], pollIntervalMs: 20 }));
    await agg2.start();
    await second.waitForCount(total - resumeAt, { timeout: 30_000 });
    await agg2.stop({ timeoutMs: 10_000 });
    expect(second.records.map((r) => r.message)).toEqual(upTo(total).slice(resumeAt));
  });

  it("multiline, stopped while held back mid-event, then restarted from checkpoints: the open event comes whole, once", async () => {
    const events = 1_500;
    const file = join(dir, "events.log");
    let text = "";
    for (let i = 0; i < events; i++) text += `E${i}\n c${i}.0\n c${i}.1\n c${i}.2\n`;
    writeFileSync(file, text);
    const cpDir = join(dir, "cp");
    const source = () => new FileSource({ name: "ml", paths: [file], pollIntervalMs: 20, multiline: { startPattern: "^E", timeoutMs: 200 } });
    const shipped: string[] = [];
    for (let round = 0; round < 2; round++) {
      const mem = new MemorySink({ name: "mem" }).block();
      const agg = new Aggregator({ checkpointDir: cpDir, credit: { records: 64 }, queue: { maxRecords: 300, whenFull: "block" }, batch: { maxRecords: 50, maxWaitMs: 5 } })
        .addSink(mem)
        .addSource(source());
      await agg.start();
      await waitFor(() => agg.metrics().sources.ml!.waiting >= 64, { timeout: 20_000, message: () => `a stall, got ${JSON.stringify(agg.metrics().sources.ml)}` });
      // Stopped while held back: the sink drains during the stop, and the open event must not go out cut short.
      const stopping = agg.stop({ timeoutMs: 10_000 });
      mem.unblock();
      await stopping;
      shipped.push(...mem.records.map((r) => r.message));
    }
    const third = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ checkpointDir: cpDir, batch: { maxWaitMs: 5 } }).addSink(third).addSource(source());
    await agg.start();
    await waitFor(() => shipped.length + third.count >= events, { timeout: 30_000, message: () => `all ${events} events, got ${shipped.length + third.count}` });
    await agg.stop({ timeoutMs: 10_000 });
    shipped.push(...third.records.map((r) => r.message));
    expect(shipped).toEqual(Array.from({ length: events }, (_, i) => `E${i}\n c${i}.0\n c${i}.1\n c${i}.2`));
  });

  it("multiline joining in a file of tiny lines stops at the window too, and every event arrives whole", async () => {
    const total = 15_000;
    const file = join(dir, "multi.log");
    // Every event: a "start N" line and two continuation lines; a last start line closes the last of them (and goes
    // out on the idle timeout). Held back mid-event far longer than the timeout, the open event must wait for its
    // lines, not go out without them.
    writeFileSync(file, `${Array.from({ length: total }, (_, i) => `start ${i}\n a\n b\n`).join("")}start end\n`);
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = aggregator(mem).addSource(
      new FileSource({ name: "multi", paths: [file], pollIntervalMs: 20, multiline: { startPattern: "^start", timeoutMs: 50 } }),
    );
    await agg.start();
    const source = () => agg.metrics().sources.multi!;
    // linesRead counts lines, emitted events: wait for the window to be spent and the collector to be paused.
    await waitFor(() => (source().collector.overCreditPauses ?? 0) > 0 || source().waiting >= WINDOW, {
      timeout: 20_000,
      message: () => `the collector to spend its window, got ${JSON.stringify(source())}`,
    });
    await waitFor(() => (source().collector.overCreditPauses ?? 0) > 0 || source().linesRead >= source().emitted * 3, {
      timeout: 20_000,
      message: () => `the collector's STATS to catch up, got ${JSON.stringify(source())}`,
    });
    expectWithinCredit(agg, "multi");
    // Held back for another STATS interval (a second): twenty idle timeouts.
    const cycles = source().collector.pollCycles!;
    await waitFor(() => source().collector.pollCycles! > cycles, { timeout: 10_000, message: "the next STATS from the collector" });
    mem.unblock();
    await mem.waitForCount(total + 1, { timeout: 30_000 });
    await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.map((r) => r.message)).toEqual([...Array.from({ length: total }, (_, i) => `start ${i}\n a\n b`), "start end"]);
  });

  it("a command printing tiny lines: stops at the window, then ships every line once, in order", async () => {
    const total = 100_000;
    const errTotal = 2_000;
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = aggregator(mem).addSource(
      new CommandSource({ name: "printer", command: process.execPath, args: ["-e", PRINTER, String(total), String(errTotal), "hold"] }),
    );
    await agg.start();
    await stalled(agg, "printer");
    expectWithinCredit(agg, "printer");
    mem.unblock();
    await mem.waitForCount(total + errTotal, { timeout: 30_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.filter((r) => r.stream === "stdout").map((r) => r.message)).toEqual(upTo(total));
    expect(mem.records.filter((r) => r.stream === "stderr").map((r) => r.message)).toEqual(upTo(errTotal));
    expect(report.sources.printer).toMatchObject({ emitted: total + errTotal, linesRead: total + errTotal });
    expect(report.sources.printer!.collector.overCreditPauses ?? 0).toBe(0);
  });

  it("a command that exits with its output held: what it printed waits for credit, then the exit is reported", async () => {
    // Fits in the pipes: the command prints it all and exits while the collector is held back.
    const total = 10_000;
    const errTotal = 2_000;
    const mem = new MemorySink({ name: "mem" }).block();
    const exits: SourceExitEvent[] = [];
    const agg = aggregator(mem).addSource(
      new CommandSource({
        name: "quick",
        command: process.execPath,
        args: ["-e", PRINTER, String(total), String(errTotal), "exit"],
        restart: { baseDelayMs: 600_000, maxDelayMs: 600_000 },
      }),
    );
    agg.on("source:exit", (e) => exits.push(e));
    await agg.start();
    // All of it read: the command has printed everything, and what the credit did not cover waits in the collector.
    await stalled(agg, "quick", Buffer.byteLength(numbers(total)) + Buffer.byteLength(numbers(errTotal)));
    expectWithinCredit(agg, "quick");
    expect(exits, "the exit is reported once the output is shipped").toEqual([]);
    mem.unblock();
    await mem.waitForCount(total + errTotal, { timeout: 30_000 });
    await waitFor(() => exits.length === 1, { timeout: 10_000, message: () => `the command's exit, saw ${exits.length}` });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(exits[0]).toMatchObject({ source: "quick", exitCode: 0 });
    expect(mem.records.filter((r) => r.stream === "stdout").map((r) => r.message)).toEqual(upTo(total));
    expect(mem.records.filter((r) => r.stream === "stderr").map((r) => r.message)).toEqual(upTo(errTotal));
    expect(report.sources.quick!.collector.overCreditPauses ?? 0).toBe(0);
  });

  it("a command that exits by itself with its output held, then stop(): its exit code is still reported", async () => {
    const mem = new MemorySink({ name: "mem" }).block();
    const exits: SourceExitEvent[] = [];
    const errors: string[] = [];
    const agg = aggregator(mem).addSource(
      new CommandSource({ name: "fails", command: process.execPath, args: ["-e", `${PRINTER}\nprocess.exitCode = 3;`, "3000", "0", "exit"] }),
    );
    agg.on("source:exit", (e) => exits.push(e));
    agg.on("source:error", (e) => errors.push(e.error.message));
    await agg.start();
    await stalled(agg, "fails", Buffer.byteLength(numbers(3_000)));
    // Nothing is reported while the output waits for credit; the stop that comes meanwhile must not hide the exit.
    expect(exits).toEqual([]);
    const stopping = agg.stop({ timeoutMs: 10_000 });
    mem.unblock();
    const report = await stopping;
    expect(exits).toEqual([expect.objectContaining({ source: "fails", exitCode: 3, expected: true })]);
    expect(errors).toEqual([expect.stringContaining("exited with code 3")]);
    expect(mem.records.map((r) => r.message)).toEqual(upTo(3_000));
    expect(report.sources.fails).toMatchObject({ emitted: 3_000, settled: 3_000 });
  });

  // 8,000 lines of 7 bytes or less: they fit in the pipe and the collector's read buffer, so the command exits while
  // all but the first window of them wait for credit.
  it("maxRestarts 0: a command that exits with its output held ships all of it, then fails; the counters agree", async () => {
    const n = 8_000;
    const mem = new MemorySink({ name: "mem" }).block();
    const exits: SourceExitEvent[] = [];
    const failed: string[] = [];
    const agg = aggregator(mem).addSource(
      new CommandSource({ name: "once", command: process.execPath, args: ["-e", INCARNATIONS, String(n), dir], restart: { maxRestarts: 0 } }),
    );
    agg.on("source:exit", (e) => exits.push(e));
    agg.on("source:failed", (e) => failed.push(e.error.code));
    await agg.start();
    await stalled(agg, "once", Buffer.byteLength(incarnation(1, n).join("\n")));
    expectWithinCredit(agg, "once");
    expect({ exits, failed }, "nothing is reported while the output waits for credit").toEqual({ exits: [], failed: [] });
    mem.unblock();
    await mem.waitForCount(n, { timeout: 30_000 });
    await waitFor(() => failed.length === 1, { timeout: 10_000, message: () => `source:failed, saw exits ${JSON.stringify(exits)}` });
    expect(agg.metrics().sources.once!.state).toBe("failed");
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.messages()).toEqual(incarnation(1, n));
    expect(exits).toEqual([expect.objectContaining({ exitCode: 0, expected: false })]);
    expect(report.sources.once).toMatchObject({ linesRead: n, emitted: n, admitted: n, settled: n, waiting: 0 });
    expect(report.sinks.mem).toMatchObject({ received: n, delivered: n, pending: 0 });
  });

  it("restarted: the next incarnation starts once the previous one's held output is all in, and its lines follow", async () => {
    const n = 8_000;
    const mem = new MemorySink({ name: "mem" }).block();
    const restarts: number[] = [];
    const agg = aggregator(mem).addSource(
      new CommandSource({
        name: "again",
        command: process.execPath,
        args: ["-e", INCARNATIONS, String(n), dir],
        restart: { maxRestarts: 5, baseDelayMs: 10, maxDelayMs: 20 },
      }),
    );
    agg.on("source:restart", (e) => restarts.push(e.restarts));
    await agg.start();
    await stalled(agg, "again", Buffer.byteLength(incarnation(1, n).join("\n")));
    expect(restarts, "no restart while the first incarnation's output waits for credit").toEqual([]);
    mem.unblock();
    await mem.waitForCount(2 * n, { timeout: 30_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(restarts).toEqual([1]);
    expect(mem.messages()).toEqual([...incarnation(1, n), ...incarnation(2, n)]);
    expect(report.sources.again).toMatchObject({ restarts: 1, linesRead: 2 * n, emitted: 2 * n, admitted: 2 * n, settled: 2 * n, waiting: 0 });
  });

  it("a running command stopped while its sink stays blocked: what it hands over past its credit is read and counted", async () => {
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = aggregator(mem).addSource(
      new CommandSource({ name: "busy", command: process.execPath, args: ["-e", PRINTER, "100000", "0", "hold"], killAfterMs: 300 }),
    );
    await agg.start();
    await stalled(agg, "busy");
    const report = await agg.stop({ timeoutMs: 5_000 });
    const s = report.sources.busy!;
    // The collector's last STATS came through (they follow its last records), so every line it read is accounted for.
    expect(s.linesRead).toBeGreaterThan(WINDOW);
    expect(s.linesRead).toBe(s.emitted);
    expect(report.sinks.mem!.delivered).toBe(0);
  });

  it("a command's multiline event on stdout is not cut by its idle timer while stderr's lines hold the credit", async () => {
    // E0 opens an event on stdout; 5,000 stderr lines then spend the credit over and over; only after them come E0's
    // continuation lines. With the sink let through in short bursts (shorter than the 200 ms idle timeout, so only a
    // timer running while stdout's pipe is not read can cut E0), every event must arrive whole.
    const script = `
process.stdout.write("E0\\n");
setTimeout(() => {
  let e = ""; for (let i = 0; i < 5000; i++) e += "W" + i + "\\n";
  process.stderr.write(e);
  setTimeout(() => {
    let s = ""; for (let k = 0; k < 3; k++) s += " c0." + k + "\\n";
    for (let i = 1; i < 20; i++) { s += "E" + i + "\\n"; for (let k = 0; k < 3; k++) s += " c" + i + "." + k + "\\n"; }
    process.stdout.write(s);
    setInterval(() => {}, 1 << 30);
  }, 100);
}, 100);`;
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({ credit: { records: 32 }, queue: { maxRecords: 64, whenFull: "block" }, batch: { maxRecords: 16, maxWaitMs: 1 } })
      .addSink(mem)
      .addSource(new CommandSource({ name: "ml", command: process.execPath, args: ["-e", script], multiline: { startPattern: "^(E|W)", timeoutMs: 200 } }));
    await agg.start();
    const stdoutEvents = () => mem.records.filter((r) => r.stream === "stdout");
    let bursts = 0;
    while (stdoutEvents().length < 20 && bursts++ < 2_000) {
      mem.unblock();
      await new Promise((r) => setTimeout(r, 20));
      mem.block();
      await new Promise((r) => setTimeout(r, 100));
    }
    mem.unblock();
    await mem.waitForCount(5_020, { timeout: 20_000 });
    await agg.stop({ timeoutMs: 10_000 });
    const events = stdoutEvents().map((r) => r.message);
    expect(events[0]).toBe("E0\n c0.0\n c0.1\n c0.2");
    expect(events.filter((m) => m.split("\n").length !== 4)).toEqual([]);
    expect(events).toHaveLength(20);
  });
});

describe("FileTailer: a handler that takes fewer lines than it was given", () => {
  /** A tailer whose handler keeps copies of the lines it takes (they are views, valid only during the call). */
  async function tailer(file: string, take: (line: TailLine, taken: number) => boolean) {
    const got: Array<{ text: string; offset: number; end: number; partial: boolean }> = [];
    const t = new FileTailer({ paths: [file], pollIntervalMs: 10, globIntervalMs: 50, rotateWaitMs: 100, partialLineTimeoutMs: false }, (lines) => {
      for (let i = 0; i < lines.length; i++) {
        const l = lines[i]!;
        if (!take(l, got.length)) return i;
        got.push({ text: l.text, offset: l.offset, end: l.end, partial: l.partial === true });
      }
      return lines.length;
    });
    await t.start();
    return { t, got };
  }

  it("pauses it; after resume the rest comes again from the first line not taken, read and counted once", async () => {
    const file = join(dir, "app.log");
    const total = 20_000;
    const text = Array.from({ length: total }, (_, i) => `line ${i}\n`).join("");
    writeFileSync(file, text);
    let budget = 997;
    const { t, got } = await tailer(file, () => budget-- > 0);
    try {
      const key = t.files()[0]!.fileKey;
      while (got.length < total) {
        await waitFor(() => t.paused || got.length === total, { timeout: 10_000, message: () => `the tailer to pause, got ${got.length} lines` });
        // Lines left to read again: not read to its end (a multiline event open in it is not idle).
        if (got.length < total) expect(t.readToEnd(key)).toBe(false);
        budget = 997;
        t.resume();
      }
      await waitFor(() => t.readToEnd(key), { timeout: 10_000, message: () => `the file to be read to its end, ${JSON.stringify(t.files())}` });
      expect(got.map((l) => l.text)).toEqual(Array.from({ length: total }, (_, i) => `line ${i}`));
      // Contiguous: every byte in exactly one line.
      expect(got.every((l, i) => l.offset === (i === 0 ? 0 : got[i - 1]!.end))).toBe(true);
      expect(t.stats()).toMatchObject({ linesEmitted: total, bytesRead: Buffer.byteLength(text) });
    } finally {
      await t.stop();
    }
  });

  it("a rotated file's unterminated tail that was not taken keeps the file open until it is", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, "a\nb\ntail");
    let refuse = true;
    const { t, got } = await tailer(file, (line) => !(line.partial === true && refuse));
    try {
      await waitFor(() => got.length === 2, { timeout: 10_000, message: () => `2 lines, got ${JSON.stringify(got)}` });
      renameSync(file, join(dir, "app.log.1"));
      // Rotated and idle: the tail is handed out as a partial line, refused, and read again (the file stays open).
      await waitFor(() => t.paused, { timeout: 10_000, message: "the tailer to pause on the refused tail" });
      expect(t.stats()).toMatchObject({ closed: 0, partialLinesEmitted: 0, linesEmitted: 2 });
      refuse = false;
      t.resume();
      await waitFor(() => t.stats().closed === 1, { timeout: 10_000, message: () => `the rotated file to close, ${JSON.stringify(t.stats())}` });
      expect(got).toEqual([
        { text: "a", offset: 0, end: 2, partial: false },
        { text: "b", offset: 2, end: 4, partial: false },
        { text: "tail", offset: 4, end: 8, partial: true },
      ]);
      expect(t.stats()).toMatchObject({ partialLinesEmitted: 1, linesEmitted: 3, bytesRead: 8 });
    } finally {
      await t.stop();
    }
  });
});
