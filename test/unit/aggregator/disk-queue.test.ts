// queue.disk: a sink's queue on disk. Records are acknowledged to their source once written, read back in order,
// survive a host SIGKILL, and a full or damaged disk queue blocks, drops or skips with counts, never silently.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, AggregatorError, FileSource, MemorySink, type DropEvent, type Sink } from "../../../src/index.js";
import { alive } from "../../helpers/alive.js";
import { numbered } from "../../helpers/sinks.js";
import { waitFor } from "../../helpers/wait-for.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "cla-diskq-"));
  dirs.push(d);
  return d;
}
const segments = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith(".seg"));
const ns = (sink: MemorySink): number[] => sink.records.map((r) => r.n as number);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("queue.disk", () => {
  it("live metrics add up while records are read back: received = delivered + dead-lettered + dropped + pending at every turn", async () => {
    const dir = tempDir();
    const sink = new MemorySink({ name: "d" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 10, maxWaitMs: 1 } }).addSink(sink, {
      queue: { maxRecords: 500, whenFull: "dropNewest", disk: { dir, fsync: false } },
    });
    await agg.start();
    const gaps: string[] = [];
    const check = (turn: string): void => {
      const c = agg.metrics().sinks.d!;
      const accounted = c.delivered + c.deadLettered + c.droppedTotal + c.pending;
      if (accounted !== c.received) gaps.push(`${turn}: received ${c.received}, accounted ${accounted} (queue ${c.queueRecords}, disk ${c.disk!.records})`);
    };
    for (let i = 0; i < 200; i++) {
      void agg.write(numbered(3, i * 3));
      await new Promise((resolve) => setImmediate(resolve));
      check(`turn ${i}`);
    }
    // The disk writes finish when the file system says so (on a busy machine, after those 200 turns): go on turning,
    // and checking, until some are on disk.
    const deadline = performance.now() + 10_000;
    for (let i = 0; agg.metrics().sinks.d!.disk!.written === 0 && performance.now() < deadline; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      check(`turn ${200 + i}`);
    }
    expect(gaps).toEqual([]);
    expect(agg.metrics().sinks.d!.disk!.written).toBeGreaterThan(0);
    sink.unblock();
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(report.sinks.d).toMatchObject({ received: 600, delivered: 600, pending: 0 });
  });

  it("acknowledges records once on disk, holds only the read-ahead in memory, and delivers all in order", async () => {
    const dir = tempDir();
    const sink = new MemorySink({ name: "out" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 5 } }).addSink(sink, {
      queue: { maxRecords: 500, disk: { dir, segmentBytes: 64 * 1024 } },
    });
    await agg.start();
    for (let i = 0; i < 10_000; i += 1_000) await agg.write(numbered(1_000, i), { source: "app" });
    await waitFor(() => agg.metrics().sinks.out!.disk!.written === 10_000, { timeout: 10_000, message: "all 10,000 written to disk" });
    const m = agg.metrics();
    // Written is taken: the source's watermark passed every record although the sink delivered none.
    expect(m.sources.app!.settled).toBe(10_000);
    expect(m.sinks.out!.delivered).toBe(0);
    expect(m.sinks.out!.pending).toBe(10_000);
    expect(m.sinks.out!.queueRecords).toBeLessThanOrEqual(500);
    expect(m.sinks.out!.disk!.segments).toBeGreaterThan(5);
    expect(agg.prometheus()).toMatch(/child_log_agg_sink_disk_written_total\{sink="out"\} 10000/);

    sink.unblock();
    await sink.waitForCount(10_000, { timeout: 20_000 });
    expect(ns(sink)).toEqual(range(10_000));
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sinks.out).toMatchObject({ received: 10_000, delivered: 10_000, pending: 0, droppedTotal: 0 });
    expect(report.timedOut).toBe(false);
    expect(readdirSync(join(dir, "out"))).toEqual([]);
  });

  it("keeps what a SIGKILLed host wrote: a new aggregator on the same directory sends each record once, in order", async () => {
    const dir = tempDir();
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    const fixture = fileURLToPath(new URL("../../fixtures/host-disk-queue.ts", import.meta.url));
    const host = spawn(process.execPath, ["--import", tsx, fixture, dir, "5000"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    host.stdout!.on("data", (d: Buffer) => (out += d));
    host.stderr!.on("data", (d: Buffer) => (err += d));
    try {
      await waitFor(() => out.includes("\n"), { timeout: 30_000, message: () => `host wrote its records to disk (stderr: ${err})` });
    } finally {
      host.kill("SIGKILL");
    }
    expect(JSON.parse(out)).toMatchObject({ written: 5_000 });
    await new Promise((resolve) => (host.exitCode !== null || host.signalCode !== null ? resolve(undefined) : host.once("exit", resolve)));

    // A sink that keeps what the engine says about each record: its number and the source it came from.
    const got: number[] = [];
    const sources = new Set<string | undefined>();
    const sink: Sink = {
      name: "out",
      send: (batch) => {
        for (const r of batch.records) got.push(r.n as number);
        for (const s of batch.sources) sources.add(s);
        return undefined;
      },
    };
    const agg = new Aggregator({ batch: { maxRecords: 200, maxWaitMs: 5 } }).addSink(sink, {
      queue: { maxRecords: 1_000, disk: { dir, segmentBytes: 64 * 1024 } },
    });
    await agg.start();
    await waitFor(() => got.length >= 5_000, { timeout: 20_000, message: () => `5,000 records delivered (got ${got.length})` });
    expect(got).toEqual(range(5_000));
    expect([...sources]).toEqual(["app"]);
    expect(agg.metrics().sinks.out!.disk!.recovered).toBe(5_000);
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sinks.out).toMatchObject({ received: 5_000, delivered: 5_000, pending: 0, droppedTotal: 0 });
    expect(segments(join(dir, "out"))).toEqual([]);
  });

  it("a file's checkpoint moves on once its lines are on disk: after a host SIGKILL, each line arrives once", async () => {
    const dir = tempDir();
    const log = join(dir, "app.log");
    const cp = join(dir, "cp");
    const queue = join(dir, "queue");
    const total = 3_000;
    writeFileSync(log, Array.from({ length: total }, (_, n) => JSON.stringify({ msg: `line ${n}`, n }) + "\n").join(""));
    const size = statSync(log).size;
    const committed = (): number => {
      try {
        return (JSON.parse(readFileSync(join(cp, "tail.json"), "utf8")) as { files: Array<{ offset: number }> }).files[0]?.offset ?? 0;
      } catch {
        return 0;
      }
    };
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    const fixture = fileURLToPath(new URL("../../fixtures/host-disk-queue-file.ts", import.meta.url));
    const host = spawn(process.execPath, ["--import", tsx, fixture, log, cp, queue], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    host.stdout!.on("data", (d: Buffer) => (out += d));
    host.stderr!.on("data", (d: Buffer) => (err += d));
    try {
      await waitFor(() => out.includes("\n"), { timeout: 30_000, message: () => `host ready (stderr: ${err})` });
      // Nothing is ever delivered, yet the whole file is committed: every line was acknowledged once on disk.
      await waitFor(() => committed() === size, { timeout: 30_000, message: () => `checkpoint at the file's end (${size}), have ${committed()}; stderr: ${err}` });
    } finally {
      host.kill("SIGKILL");
    }
    await new Promise((resolve) => (host.exitCode !== null || host.signalCode !== null ? resolve(undefined) : host.once("exit", resolve)));
    // Its collector notices the host is gone and exits; the next host's collector then has the checkpoint to itself.
    const { collectorPid } = JSON.parse(out) as { collectorPid: number };
    await waitFor(() => !alive(collectorPid), { timeout: 5_000, message: `collector ${collectorPid} gone after its host was SIGKILLed` });

    const sink = new MemorySink({ name: "out" });
    const agg = new Aggregator({ checkpointDir: cp, batch: { maxRecords: 200, maxWaitMs: 5 } })
      .addSource(new FileSource({ name: "tail", paths: [log], parser: "json", pollIntervalMs: 20 }))
      .addSink(sink, { queue: { maxRecords: 1_000, disk: { dir: queue, segmentBytes: 64 * 1024 } } });
    await agg.start();
    await sink.waitForCount(total, { timeout: 20_000 });
    // The file resumes at its end (nothing read again); the disk queue sends what the killed host had taken.
    expect(ns(sink)).toEqual(range(total));
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sinks.out).toMatchObject({ received: total, delivered: total, pending: 0 });
    expect(report.sources.tail!.emitted).toBe(0);
  });

  it("leaves what a stop's deadline did not deliver on disk, and the next run sends it", async () => {
    const dir = tempDir();
    const first = new MemorySink({ name: "out" }).neverAnswer();
    const a = new Aggregator({ batch: { maxRecords: 50, maxWaitMs: 5 } }).addSink(first, { queue: { maxRecords: 200, disk: { dir } } });
    await a.start();
    await a.write(numbered(1_000), { source: "app" });
    await waitFor(() => a.metrics().sinks.out!.disk!.written === 1_000, { timeout: 10_000, message: "all written" });
    const r1 = await a.stop({ timeoutMs: 100 });
    expect(r1.timedOut).toBe(true);
    expect(r1.sinks.out).toMatchObject({ received: 1_000, delivered: 0, pending: 1_000 });

    const second = new MemorySink({ name: "out" });
    const b = new Aggregator({ batch: { maxRecords: 50, maxWaitMs: 5 } }).addSink(second, { queue: { maxRecords: 200, disk: { dir } } });
    await b.start();
    await second.waitForCount(1_000, { timeout: 10_000 });
    expect(ns(second)).toEqual(range(1_000));
    const r2 = await b.stop({ timeoutMs: 10_000 });
    expect(r2.sinks.out).toMatchObject({ received: 1_000, delivered: 1_000, pending: 0 });
  });

  it("skips a damaged record, counted as diskCorrupt, and delivers the others", async () => {
    const dir = tempDir();
    const a = new Aggregator({ batch: { maxRecords: 50, maxWaitMs: 5 } }).addSink(new MemorySink({ name: "out" }).neverAnswer(), {
      queue: { maxRecords: 200, disk: { dir } },
    });
    await a.start();
    await a.write(numbered(100), { source: "app" });
    await waitFor(() => a.metrics().sinks.out!.disk!.written === 100, { timeout: 10_000, message: "all written" });
    await a.stop({ timeoutMs: 50 });
    const [seg] = segments(join(dir, "out"));
    const path = join(dir, "out", seg!);
    const bytes = readFileSync(path);
    const at = bytes.indexOf('"line 42"');
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] ^= 0x01; // "line 42" → "lhne 42": the record's checksum no longer matches
    writeFileSync(path, bytes);

    const sink = new MemorySink({ name: "out" });
    const drops: DropEvent[] = [];
    const b = new Aggregator({ batch: { maxRecords: 50, maxWaitMs: 5 } }).addSink(sink, { queue: { maxRecords: 200, disk: { dir } } });
    b.on("drop", (e) => drops.push(e));
    await b.start();
    await sink.waitForCount(99, { timeout: 10_000 });
    await waitFor(() => drops.length > 0, { timeout: 5_000, message: "a diskCorrupt drop event" });
    expect(ns(sink)).toEqual(range(100).filter((n) => n !== 42));
    expect(drops).toEqual([expect.objectContaining({ sink: "out", reason: "diskCorrupt", count: 1, detail: expect.stringMatching(/000000000001\.seg/) })]);
    const report = await b.stop({ timeoutMs: 10_000 });
    expect(report.sinks.out).toMatchObject({ received: 100, delivered: 99, dropped: { diskCorrupt: 1 }, pending: 0 });
  });

  it("a full disk queue blocks producers until records leave it, losing none", async () => {
    const dir = tempDir();
    const sink = new MemorySink({ name: "out" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 5 } }).addSink(sink, {
      queue: { maxRecords: 500, disk: { dir, maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 } },
    });
    await agg.start();
    const written = agg.write(numbered(30_000), { source: "app" });
    // About 100 bytes a record: a 1 MiB disk queue holds about 10,000 of them. The rest waits for admission.
    await waitFor(() => agg.metrics().sources.app!.waiting > 0 && agg.metrics().sinks.out!.disk!.written > 5_000, {
      timeout: 10_000,
      message: "the disk queue filled and the writer waits",
    });
    const m = agg.metrics().sinks.out!;
    expect(m.disk!.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(m.received).toBeLessThan(30_000);
    sink.unblock();
    await written;
    await sink.waitForCount(30_000, { timeout: 30_000 });
    expect(ns(sink)).toEqual(range(30_000));
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sinks.out).toMatchObject({ received: 30_000, delivered: 30_000, droppedTotal: 0, pending: 0 });
  });

  it("room freed only by deleting settled segments lets blocked producers in (one batch delivers the whole disk)", async () => {
    const dir = tempDir();
    const sink = new MemorySink({ name: "out" });
    // A batch large enough to take everything on disk at once: after its delivery nothing else is in flight, so
    // only the deletion of the segments it emptied can wake the writer.
    const agg = new Aggregator({ batch: { maxRecords: 100_000, maxBytes: 32 * 1024 * 1024, maxWaitMs: 200 } }).addSink(sink, {
      queue: { maxRecords: 100_000, disk: { dir, maxBytes: 1024 * 1024, segmentBytes: 64 * 1024, fsync: false } },
    });
    await agg.start();
    try {
      const written = agg.write(
        Array.from({ length: 3_000 }, (_, n) => ({ n, msg: "y".repeat(1_000) })),
        { source: "app" },
      );
      await sink.waitForCount(3_000, { timeout: 20_000 });
      await written;
      expect(ns(sink)).toEqual(range(3_000));
    } finally {
      await agg.stop({ timeoutMs: 5_000 });
    }
  });

  it("a record that can never fit in disk.maxBytes is dropped as tooLarge, counted, and blocks nothing behind it", async () => {
    const dir = tempDir();
    const sink = new MemorySink({ name: "out" });
    const agg = new Aggregator({ batch: { maxRecords: 10, maxWaitMs: 5 } }).addSink(sink, {
      queue: { disk: { dir, maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 } },
    });
    const drops: DropEvent[] = [];
    agg.on("drop", (d) => drops.push(d));
    await agg.start();
    const written = [agg.write({ n: 0, msg: "x".repeat(1024 * 1024 + 10) }, { source: "app" }), agg.write({ n: 1 }, { source: "app" })];
    await sink.waitForCount(1, { timeout: 10_000 });
    await Promise.all(written);
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(ns(sink)).toEqual([1]);
    expect(drops).toEqual([expect.objectContaining({ sink: "out", reason: "tooLarge", count: 1, detail: expect.stringContaining("queue.disk.maxBytes 1048576") })]);
    expect(report.sinks.out).toMatchObject({ received: 2, delivered: 1, droppedTotal: 1, dropped: { tooLarge: 1 }, pending: 0 });
    expect(report.timedOut).toBe(false);
  });

  it("a dead letter too large for the dead-letter sink's disk.maxBytes is kept in memory and delivered, not dropped", async () => {
    const dir = tempDir();
    const es = new MemorySink({ name: "es" }).rejectWhen((r) => r.n === 0, "mapping conflict");
    const dlq = new MemorySink({ name: "dlq" });
    const agg = new Aggregator({ batch: { maxRecords: 10, maxWaitMs: 5 } })
      .addSink(es, { deadLetter: "dlq" })
      .addSink(dlq, { queue: { disk: { dir, maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 } } });
    const drops: DropEvent[] = [];
    agg.on("drop", (d) => drops.push(d));
    await agg.start();
    await agg.write({ n: 0, msg: "x".repeat(1024 * 1024 + 10) }, { source: "app" });
    await dlq.waitForCount(1, { timeout: 10_000 });
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(ns(dlq)).toEqual([0]);
    expect(drops).toEqual([]);
    expect(report.sinks.es).toMatchObject({ deadLettered: 1, droppedTotal: 0 });
  });

  it("with dropNewest, a full disk queue drops what arrives, counted and announced", async () => {
    const dir = tempDir();
    const sink = new MemorySink({ name: "out" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 5 } }).addSink(sink, {
      queue: { maxRecords: 500, whenFull: "dropNewest", disk: { dir, maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 } },
    });
    let announced = 0;
    agg.on("drop", (e) => {
      if (e.reason === "queueFull") announced += e.count;
    });
    await agg.start();
    for (let i = 0; i < 30_000; i += 1_000) {
      await agg.write(numbered(1_000, i), { source: "app" });
      // Let each write land before the next, so the disk fills rather than only the write backlog.
      await waitFor(() => agg.metrics().sinks.out!.disk!.written + (agg.metrics().sinks.out!.dropped.queueFull ?? 0) === i + 1_000, {
        timeout: 10_000,
        message: "the write landed",
      });
    }
    const dropped = agg.metrics().sinks.out!.dropped.queueFull ?? 0;
    expect(dropped).toBeGreaterThan(10_000);
    sink.unblock();
    await sink.waitForCount(30_000 - dropped, { timeout: 30_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sinks.out).toMatchObject({ received: 30_000, delivered: 30_000 - dropped, dropped: { queueFull: dropped }, pending: 0 });
    expect(announced).toBe(dropped);
    // What arrived is the oldest records, in order: the newest were the ones dropped.
    expect(ns(sink)).toEqual(range(30_000 - dropped));
  });

  it("a write that fails keeps its records in memory: announced as ERR_DISK_QUEUE, and all still arrive", async () => {
    const dir = tempDir();
    const sink = new MemorySink({ name: "out" });
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 5 } }).addSink(sink, { queue: { disk: { dir } } });
    const errors: string[] = [];
    agg.on("sink:error", (e) => errors.push(`${e.error.code}: ${e.error.message}`));
    await agg.start();
    // The name of the first segment is taken (by a directory): its creation fails, as a full or broken disk would.
    mkdirSync(join(dir, "out", "000000000001.seg"));
    await agg.write(numbered(1_000), { source: "app" });
    await sink.waitForCount(1_000, { timeout: 10_000 });
    expect(ns(sink)).toEqual(range(1_000));
    expect(errors).toEqual([expect.stringMatching(/^ERR_DISK_QUEUE: could not write 1000 record\(s\) to the disk queue .*EEXIST/)]);
    expect(agg.metrics().sinks.out!.disk).toMatchObject({ writeErrors: 1, written: 0 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sinks.out).toMatchObject({ received: 1_000, delivered: 1_000, pending: 0, droppedTotal: 0 });
  });

  it("refuses a second user of the same directory, and options it cannot honour", async () => {
    const dir = tempDir();
    const a = new Aggregator().addSink(new MemorySink({ name: "out" }), { queue: { disk: { dir } } });
    let thrown: unknown;
    try {
      new Aggregator().addSink(new MemorySink({ name: "out" }), { queue: { disk: { dir } } });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AggregatorError);
    expect(thrown).toMatchObject({ code: "ERR_DISK_QUEUE", message: expect.stringMatching(/in use by process \d+/) });
    await a.stop();
    // Released at stop: the directory can be used again.
    const b = new Aggregator().addSink(new MemorySink({ name: "out" }), { queue: { disk: { dir } } });
    await b.stop();

    const bad = (queue: object): unknown => {
      try {
        new Aggregator().addSink(new MemorySink({ name: "x" }), { queue });
      } catch (error) {
        return error;
      }
      return undefined;
    };
    expect(bad({ disk: {} })).toMatchObject({ code: "ERR_INVALID_OPTION", message: expect.stringMatching(/queue\.disk\.dir/) });
    expect(bad({ whenFull: "dropOldest", disk: { dir } })).toMatchObject({ code: "ERR_INVALID_OPTION", message: expect.stringMatching(/dropOldest/) });
    expect(bad({ disk: { dir, maxBytes: 1 << 20, segmentBytes: 2 << 20 } })).toMatchObject({ code: "ERR_INVALID_OPTION", message: expect.stringMatching(/segmentBytes/) });
  });
});
