// FileSource end to end: real files, real collector children, checkpoints committed only from acks.
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, CheckpointError, FileSource, MemorySink } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-file-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lines = (from: number, n: number): string =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ level: "info", msg: `line ${from + i}`, n: from + i })).join("\n") + "\n";

const numbersIn = (m: MemorySink): number[] => m.records.map((r) => r.n as number);

function missing(seen: number[], total: number): number[] {
  const set = new Set(seen);
  const out: number[] = [];
  for (let i = 0; i < total; i++) if (!set.has(i)) out.push(i);
  return out;
}

describe("FileSource", () => {
  it("tails existing and appended lines with file path and offset, parsed as JSON", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, lines(0, 100));
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 20 } })
      .addSource(new FileSource({ name: "app", paths: [join(dir, "*.log")], parser: "json", pollIntervalMs: 20 }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(100, { timeout: 10_000 });
    appendFileSync(file, lines(100, 100));
    await mem.waitForCount(200, { timeout: 10_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(numbersIn(mem)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    const first = mem.records[0]!;
    expect(first).toMatchObject({ message: "line 0", log: { level: "info", file: { path: file }, offset: 0 }, service: { name: "app" } });
    expect(mem.records[1]!.log!.offset).toBe(Buffer.byteLength(lines(0, 1)));
    expect(report.sources.app).toMatchObject({ kind: "file", emitted: 200, linesRead: 200, parseErrors: 0 });
  });

  it("records carry log.file.device_id and inode (fast path, general path, multiline); a rotated file's successor its own", async () => {
    const paths = { fast: join(dir, "j.log"), multi: join(dir, "m.log"), plain: join(dir, "p.log") };
    // Canonical JSON takes the fast path; `1.0` is not canonical, so that line takes the general path.
    const json = '{"level":"info","msg":"canonical"}\n{"level":"info","msg":"general","n":1.0}\n';
    writeFileSync(paths.fast, json);
    writeFileSync(paths.multi, '{"msg":"event 1"}\n{"msg":"event 2"}\n');
    writeFileSync(paths.plain, "plain line\n");
    const identity = (file: string) => {
      const s = statSync(file, { bigint: true });
      return { path: file, device_id: String(s.dev), inode: String(s.ino) };
    };
    const before = identity(paths.fast);
    const mem = new MemorySink({ name: "mem" });
    const tail = { pollIntervalMs: 20, globIntervalMs: 50, rotateWaitMs: 200 };
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new FileSource({ name: "fast", paths: [paths.fast], parser: "json", ...tail }))
      .addSource(new FileSource({ name: "multi", paths: [paths.multi], parser: "json", multiline: { startPattern: "^\\{", timeoutMs: 50 }, ...tail }))
      .addSource(new FileSource({ name: "plain", paths: [paths.plain], parser: "plain", ...tail }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(5, { timeout: 10_000 });
    renameSync(paths.fast, `${paths.fast}.1`);
    writeFileSync(paths.fast, json);
    const after = identity(paths.fast);
    await mem.waitForCount(7, { timeout: 10_000 });
    await agg.stop({ timeoutMs: 10_000 });
    const files = (source: string) => mem.records.filter((r) => r.service?.name === source).map((r) => JSON.stringify(r.log?.file));
    expect(after.inode).not.toBe(before.inode);
    // Key order too: path, device_id, inode, as the general path writes them (the fast path copies that shape).
    expect(files("fast")).toEqual([before, before, after, after].map((f) => JSON.stringify(f)));
    expect(files("multi")).toEqual([identity(paths.multi), identity(paths.multi)].map((f) => JSON.stringify(f)));
    expect(files("plain")).toEqual([JSON.stringify(identity(paths.plain))]);
  });

  it("a truncation that takes away an unfinished last line is counted and announced on source:log", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, `${lines(0, 2)}{"msg":"unfinished`);
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 20 } })
      .addSource(new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20, partialLineTimeoutMs: false }))
      .addSink(mem);
    const logs: string[] = [];
    agg.on("source:log", (e) => logs.push(`${e.level} ${e.message}`));
    await agg.start();
    await mem.waitForCount(2, { timeout: 10_000 });
    writeFileSync(file, ""); // truncated in place, under the unfinished line
    await waitFor(() => logs.some((l) => l.includes("was truncated before its last line ended")), { timeout: 10_000, message: () => `the warning, got ${JSON.stringify(logs)}` });
    appendFileSync(file, lines(2, 1));
    await mem.waitForCount(3, { timeout: 10_000 });
    expect(numbersIn(mem)).toEqual([0, 1, 2]);
    expect(logs.find((l) => l.includes("truncated"))).toBe(`warn ${file} was truncated before its last line ended: its 18 bytes were discarded`);
    await waitFor(() => agg.metrics().sources.app!.collector.partialLinesDiscarded === 1, { timeout: 10_000, message: "the counter" });
    await agg.stop({ timeoutMs: 10_000 });
  });

  it("paths it cannot read (a directory, a symbolic link loop) are announced on source:log once each, and counted", async () => {
    writeFileSync(join(dir, "app.log"), lines(0, 1));
    mkdirSync(join(dir, "dir.log"));
    symlinkSync("loop.log", join(dir, "loop.log")); // points at itself: ELOOP
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 20 } })
      .addSource(new FileSource({ name: "app", paths: [join(dir, "*.log")], parser: "json", pollIntervalMs: 20, globIntervalMs: 20 }))
      .addSink(mem);
    const logs: string[] = [];
    agg.on("source:log", (e) => logs.push(`${e.level} ${e.message}`));
    await agg.start();
    await mem.waitForCount(1, { timeout: 10_000 });
    const collector = () => agg.metrics().sources.app!.collector;
    await waitFor(() => (collector().notRegularSkipped ?? 0) >= 1 && (collector().symlinkLoops ?? 0) >= 1 && logs.length >= 2, {
      timeout: 10_000,
      message: () => `both counted and announced, got ${JSON.stringify(collector())} and ${JSON.stringify(logs)}`,
    });
    // Later scans find them again: still said once each.
    appendFileSync(join(dir, "app.log"), lines(1, 1));
    await mem.waitForCount(2, { timeout: 10_000 });
    await agg.stop({ timeoutMs: 10_000 });
    expect(logs.sort()).toEqual([
      `warn ${join(dir, "dir.log")} is not a regular file: it is skipped`,
      `warn ${join(dir, "loop.log")} is a symbolic link loop: it is skipped`,
    ]);
    expect(numbersIn(mem)).toEqual([0, 1]);
  });

  it("partialLineTimeoutMs reaches the collector: an unfinished last line is shipped after it", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, `${lines(0, 1)}{"msg":"no newline yet"}`);
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 20 } })
      .addSource(new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20, partialLineTimeoutMs: 50 }))
      .addSink(mem);
    await agg.start();
    // The default (5 s) would not ship it within this wait.
    await mem.waitForCount(2, { timeout: 3_000 });
    expect(mem.messages()).toEqual(["line 0", "no newline yet"]);
    await agg.stop({ timeoutMs: 10_000 });
  });

  it("closeInactiveMs reaches the collector: an idle file is closed (its descriptor freed) and reopened when it grows", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, lines(0, 1));
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 20 } })
      .addSource(new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20, globIntervalMs: 50, closeInactiveMs: 100 }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(1, { timeout: 10_000 });
    // The default (5 minutes) would keep it open through this wait.
    const open = () => agg.metrics().sources.app!.collector["filesOpen"];
    await waitFor(() => open() === 0, { timeout: 10_000, message: () => `the idle file closed, filesOpen ${open()}` });
    appendFileSync(file, lines(1, 1));
    await mem.waitForCount(2, { timeout: 10_000 });
    expect(mem.messages()).toEqual(["line 0", "line 1"]);
    await agg.stop({ timeoutMs: 10_000 });
  });

  it("collector SIGKILLed mid-stream restarts and resumes from the last acked checkpoint: nothing missing", async () => {
    const file = join(dir, "app.log");
    const total = 20_000;
    const first = 2_000;
    writeFileSync(file, lines(0, first));
    const cpFile = join(dir, "cp", "app.json");
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ checkpointDir: join(dir, "cp"), batch: { maxRecords: 500, maxWaitMs: 10 }, credit: { records: 500, bytes: 1 << 20 } })
      .addSource(
        new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20, restart: { baseDelayMs: 10, maxDelayMs: 50 } }),
      )
      .addSink(mem);
    const restarts: number[] = [];
    agg.on("source:restart", (e) => restarts.push(e.restarts));
    await agg.start();
    await mem.waitForCount(first, { timeout: 20_000 });
    // The first part is settled; its position reaches the checkpoint file (acked, debounced, atomic).
    const committed = (): number => {
      try {
        const cp = JSON.parse(readFileSync(cpFile, "utf8")) as { files: Array<{ offset: number }> };
        return cp.files[0]?.offset ?? 0;
      } catch {
        return 0;
      }
    };
    await waitFor(() => committed() === Buffer.byteLength(lines(0, first)), { timeout: 10_000, message: () => `checkpoint at the end of part 1, got ${committed()}` });
    appendFileSync(file, lines(first, total - first));
    await mem.waitForCount(first + 2_000, { timeout: 20_000 });
    process.kill(agg.metrics().sources.app!.pid!, "SIGKILL");
    await waitFor(() => restarts.length >= 1, { timeout: 10_000, message: "a restart after SIGKILL" });
    await waitFor(() => missing(numbersIn(mem), total).length === 0, {
      timeout: 30_000,
      message: () => `all ${total} numbers; missing ${missing(numbersIn(mem), total).length}`,
    });
    const report = await agg.stop({ timeoutMs: 10_000 });
    const seen = numbersIn(mem);
    const counts = new Map<number, number>();
    for (const n of seen) counts.set(n, (counts.get(n) ?? 0) + 1);
    // Resumed from the checkpoint, not from the start: nothing of the committed part came again.
    expect([...counts].filter(([n, c]) => n < first && c > 1)).toEqual([]);
    console.info(`[file SIGKILL] sent ${total}, unique ${counts.size}, duplicates ${seen.length - counts.size}, missing 0`);
    expect(report.sources.app!.restarts).toBeGreaterThanOrEqual(1);
  });

  it("a restarted collector's levels (files open) are its own, not added to the dead one's", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, lines(0, 10));
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20, restart: { baseDelayMs: 10, maxDelayMs: 50 } }))
      .addSink(mem);
    const source = () => agg.metrics().sources.app!;
    await agg.start();
    await waitFor(() => source().collector.filesOpen === 1 && source().linesRead === 10, {
      timeout: 10_000,
      message: () => `the first collector's stats: ${JSON.stringify(source())}`,
    });
    process.kill(source().pid!, "SIGKILL");
    await waitFor(() => source().restarts >= 1 && source().state === "running", { timeout: 10_000, message: "a restart after SIGKILL" });
    appendFileSync(file, lines(10, 10));
    // Its stats came once it counts lines of its own.
    await waitFor(() => source().linesRead >= 20, { timeout: 10_000, message: () => `the new collector's stats: ${JSON.stringify(source())}` });
    expect(source().collector.filesOpen).toBe(1);
    expect(agg.prometheus()).toContain('child_log_agg_collector_files_open{source="app"} 1\n');
    await agg.stop({ timeoutMs: 10_000 });
  });

  it("a graceful stop commits final positions: the next run ships only what is new (no duplicates)", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, lines(0, 1_000));
    const run = async (expected: number): Promise<number[]> => {
      const mem = new MemorySink({ name: "mem" });
      const agg = new Aggregator({ checkpointDir: join(dir, "cp"), batch: { maxWaitMs: 10 } })
        .addSource(new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20 }))
        .addSink(mem);
      await agg.start();
      await mem.waitForCount(expected, { timeout: 20_000 });
      const report = await agg.stop({ timeoutMs: 10_000 });
      expect(report.timedOut).toBe(false);
      return numbersIn(mem);
    };
    expect(await run(1_000)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    appendFileSync(file, lines(1_000, 10));
    expect(await run(10)).toEqual(Array.from({ length: 10 }, (_, i) => 1_000 + i));
  });

  it("startAt end after a day down: every file resumes at its checkpoint, files that appeared meanwhile are read whole", async () => {
    const record = (id: string): string => JSON.stringify({ level: "info", msg: id, id }) + "\n";
    const names = Array.from({ length: 20 }, (_, f) => `f${String(f).padStart(2, "0")}`);
    for (const f of names) writeFileSync(join(dir, `${f}.log`), record(`${f}-0`) + record(`${f}-1`));
    const cpFile = join(dir, "cp", "app.json");
    const run = async (expected: number): Promise<string[]> => {
      const mem = new MemorySink({ name: "mem" });
      const agg = new Aggregator({ checkpointDir: join(dir, "cp"), batch: { maxWaitMs: 10 } })
        .addSource(new FileSource({ name: "app", paths: [join(dir, "*.log*")], parser: "json", startAt: "end", pollIntervalMs: 20 }))
        .addSink(mem);
      await agg.start();
      if (expected > 0) await mem.waitForCount(expected, { timeout: 20_000 });
      const report = await agg.stop({ timeoutMs: 10_000 });
      expect(report.timedOut).toBe(false);
      return mem.records.map((r) => r.id as string).sort();
    };
    expect(await run(0)).toEqual([]);
    const saved = JSON.parse(readFileSync(cpFile, "utf8")) as { files: Array<{ path: string; offset: number; lastSeen: number }> };
    expect(saved.files).toHaveLength(20);
    // Down for 25 hours (as the stored lastSeen says); meanwhile every file grows, f00 is rotated and g appears.
    for (const e of saved.files) e.lastSeen = Date.now() - 25 * 3_600_000;
    writeFileSync(cpFile, JSON.stringify(saved));
    for (const f of names) appendFileSync(join(dir, `${f}.log`), record(`${f}-2`) + record(`${f}-3`) + record(`${f}-4`));
    renameSync(join(dir, "f00.log"), join(dir, "f00.log.1"));
    writeFileSync(join(dir, "f00.log"), record("f00b-0") + record("f00b-1"));
    writeFileSync(join(dir, "g.log"), record("g-0") + record("g-1"));
    const expected = [...names.flatMap((f) => [2, 3, 4].map((i) => `${f}-${i}`)), "f00b-0", "f00b-1", "g-0", "g-1"].sort();
    const got = await run(expected.length);
    expect(got).toEqual(expected);
  });

  it("a blocked sink stops the tail: its read position stops advancing, memory stays within the bounds, then all arrive", async () => {
    const file = join(dir, "big.log");
    const total = 30_000;
    writeFileSync(file, lines(0, total));
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({
      batch: { maxRecords: 200, maxWaitMs: 10 },
      queue: { maxRecords: 1_000, whenFull: "block" },
      credit: { records: 500, bytes: 1 << 20 },
    })
      .addSource(new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20 }))
      .addSink(mem);
    await agg.start();
    // Wait until the pipeline is full: queue at its bound.
    await waitFor(() => agg.metrics().sinks.mem!.queueRecords === 1_000, { timeout: 10_000, message: "queue full" });
    // Then watch the collector's own reports (STATS): two more poll-loop reports later, it has read nothing more.
    const cycles = (): number => agg.metrics().sources.app!.collector.pollCycles ?? 0;
    const read = (): number => agg.metrics().sources.app!.linesRead;
    const c0 = cycles();
    await waitFor(() => cycles() > c0, { timeout: 10_000, message: "a collector report" });
    const r1 = read();
    const c1 = cycles();
    await waitFor(() => cycles() > c1, { timeout: 10_000, message: "another collector report" });
    const m = agg.metrics();
    expect(read()).toBe(r1); // the tail's position stopped advancing
    expect(r1).toBeLessThan(total);
    // Bounded: the queue holds at most its bound; the host inbox at most the credit window plus the lines of the
    // one read chunk (64 KiB) that was being parsed when credit ran out.
    const lineBytes = Buffer.byteLength(lines(0, 1));
    expect(m.sinks.mem!.queueRecords).toBeLessThanOrEqual(1_000);
    expect(m.sources.app!.waiting).toBeLessThanOrEqual(500 + Math.ceil(65_536 / lineBytes));
    expect(m.sources.app!.emitted).toBeLessThanOrEqual(1_000 + 500 + Math.ceil(65_536 / lineBytes));
    mem.unblock();
    await mem.waitForCount(total, { timeout: 30_000 });
    await agg.stop({ timeoutMs: 10_000 });
    expect(missing(numbersIn(mem), total)).toEqual([]);
  });

  it("records that come while a stalled sink packs them (left in the pipe reads, not copied) arrive byte for byte, in order", async () => {
    const file = join(dir, "varied.log");
    const total = 40_000;
    // Lengths from 30 to 2,000 bytes and multi-byte text, so records cross the pipe reads' edges anywhere.
    const texts = Array.from({ length: total }, (_, i) => `r${i} ${"é€😀x".repeat(i % 7)} ${"p".repeat((i * 7919) % 1_900)}`);
    writeFileSync(file, texts.map((msg, n) => JSON.stringify({ msg, n })).join("\n") + "\n");
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 500, maxWaitMs: 10 }, queue: { maxRecords: 30_000, maxBytes: 256 * 1024 * 1024 } })
      .addSource(new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20 }))
      .addSink(mem);
    await agg.start();
    try {
      // Packing began once more than the hot records (two batches) came without a delivery; the rest came while it
      // was on, and the queue filled.
      await waitFor(() => agg.metrics().sinks.mem!.queueRecords === 30_000, { timeout: 20_000, message: () => `queue full, got ${JSON.stringify(agg.metrics().sinks.mem)}` });
      expect(agg.metrics().sinks.mem!.queueCompressedRecords).toBeGreaterThan(25_000);
      mem.unblock();
      await mem.waitForCount(total, { timeout: 30_000 });
    } finally {
      await agg.stop({ timeoutMs: 10_000 });
    }
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(mem.records.map((r) => r.message)).toEqual(texts);
  }, 60_000);
});

describe("FileSource checkpoint lock", () => {
  it("a second aggregator with the same checkpointDir and source name fails start() with ERR_CHECKPOINT (no crash), and the first goes on", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, lines(0, 10));
    const checkpointDir = join(dir, "state");
    const source = () => new FileSource({ name: "app", paths: [file], pollIntervalMs: 20 });
    const first = new MemorySink({ name: "mem" });
    const a = new Aggregator({ checkpointDir, batch: { maxWaitMs: 20 } }).addSource(source()).addSink(first);
    await a.start();
    try {
      await first.waitForCount(10, { timeoutMs: 10_000 });
      const b = new Aggregator({ checkpointDir }).addSource(source()).addSink(new MemorySink({ name: "mem" }));
      const errors: string[] = [];
      b.on("source:error", (e) => errors.push(e.error.code));
      const refused = await b.start().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(CheckpointError);
      expect(refused).toMatchObject({ code: "ERR_CHECKPOINT", source: "app", message: expect.stringMatching(/in use by process \d+: another aggregator runs a source named "app"/) });
      expect(errors).not.toContain("ERR_COLLECTOR_CRASHED");
      appendFileSync(file, lines(10, 5));
      await first.waitForCount(15, { timeoutMs: 10_000 });
    } finally {
      await a.stop({ timeoutMs: 5_000 });
    }
  }, 20_000);
});
