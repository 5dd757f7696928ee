// Collectors that misbehave: never ready, garbage on the channel, a 10 MB line, credit ignored. Coded errors,
// bounded memory, and the host and the other sources keep working.
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { Aggregator, CommandSource, MemorySink, type AggregatorError } from "../../src/index.js";
import { waitFor } from "../helpers/wait-for.js";

/** A collector process preloaded with `code` (runs before the collector's own entry point). */
const preload = (code: string): string[] => ["--import", `data:text/javascript,${encodeURIComponent(code)}`];

/** A steady source to prove the others keep delivering: prints `n` JSON lines, then idles. */
const steady = (name: string, n: number) =>
  new CommandSource({
    name,
    command: process.execPath,
    args: ["-e", `for (let i = 0; i < ${n}; i++) console.log(JSON.stringify({ msg: "ok " + i, i })); setInterval(() => {}, 1e9)`],
    parser: "json",
  });

async function withHealthyNeighbour(bad: CommandSource, expectCodes: string[]) {
  const mem = new MemorySink({ name: "mem" });
  const agg = new Aggregator({ batch: { maxWaitMs: 10 } }).addSource(steady("good", 50)).addSink(mem);
  const errors: string[] = [];
  const failed: AggregatorError[] = [];
  agg.on("source:error", (e) => errors.push(e.error.code));
  agg.on("source:failed", (e) => failed.push(e.error));
  await agg.start();
  agg.addSource(bad);
  await waitFor(() => expectCodes.every((c) => errors.includes(c)), { timeout: 20_000, message: () => `errors ${expectCodes}, saw ${errors}` });
  await waitFor(() => failed.length === 1, { timeout: 20_000, message: "the breaker to trip for the bad source" });
  await waitFor(() => mem.records.filter((r) => r.service?.name === "good").length === 50, { message: "50 records from the good source" });
  const report = await agg.stop({ timeoutMs: 10_000 });
  return { report, failed: failed[0]! };
}

describe("hostile collectors", () => {
  it("a collector that never says ready: ERR_COLLECTOR_START_TIMEOUT, then the breaker; the others deliver", async () => {
    const bad = new CommandSource({
      name: "stuck",
      command: "true",
      execArgv: preload("setInterval(() => {}, 1e9); await new Promise(() => {});"),
      startTimeoutMs: 300,
      restart: { baseDelayMs: 10, maxDelayMs: 20, maxRestarts: 1 },
    });
    const { report, failed } = await withHealthyNeighbour(bad, ["ERR_COLLECTOR_START_TIMEOUT"]);
    expect(failed.code).toBe("ERR_COLLECTOR_FAILED");
    expect(report.sources.good!.emitted).toBe(50);
  });

  it("garbage on the channel: ERR_CHANNEL_PROTOCOL, the process is killed and restarted, never a host crash", async () => {
    const bad = new CommandSource({
      name: "garbage",
      command: "true",
      execArgv: preload(`import { writeSync } from "node:fs"; writeSync(3, "this is not a frame, just bytes"); setInterval(() => {}, 1e9);`),
      restart: { baseDelayMs: 10, maxDelayMs: 20, maxRestarts: 1 },
    });
    const { report, failed } = await withHealthyNeighbour(bad, ["ERR_CHANNEL_PROTOCOL"]);
    expect(failed.code).toBe("ERR_COLLECTOR_FAILED");
    expect(report.sources.garbage!.emitted).toBe(0);
  });

  it("a collector that prints garbage on its own stdout and stderr still works: the channel is fd 3", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new CommandSource({
          name: "noisy",
          command: process.execPath,
          args: ["-e", `for (let i = 0; i < 20; i++) console.log(JSON.stringify({ i }))`],
          parser: "json",
          restart: { maxRestarts: 0 },
          // Preloaded into the collector process itself (not the command): binary noise and frame-like bytes.
          execArgv: preload(
            `const nl = String.fromCharCode(10); process.stdout.write(Buffer.from([0, 0, 0, 9, 2, 255, 254, 0, 1, 10])); process.stdout.write(("garbage" + String.fromCharCode(0) + nl).repeat(10000)); process.stderr.write("noise" + nl);`,
          ),
        }),
      )
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(20, { timeout: 10_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.map((r) => r.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(report.sources.noisy!.emitted).toBe(20);
  });

  it("a command printing 10 MB without a newline: split at maxLineBytes, counted, queue bytes within bounds", async () => {
    const mem = new MemorySink({ name: "mem" });
    const maxBytes = 1 << 20;
    const agg = new Aggregator({ batch: { maxWaitMs: 10 }, queue: { maxBytes, whenFull: "block" } })
      .addSource(
        new CommandSource({
          name: "huge",
          command: process.execPath,
          args: ["-e", `process.stdout.write("x".repeat(10 * 1024 * 1024)); setInterval(() => {}, 1e9)`],
          maxLineBytes: 65_536,
        }),
      )
      .addSink(mem);
    let maxQueueBytes = 0;
    agg.on("delivered", () => (maxQueueBytes = Math.max(maxQueueBytes, agg.metrics().sinks.mem!.queueBytes)));
    await agg.start();
    // 159 full pieces leave as they fill; the 160th ends exactly at 10 MiB with no newline after it, so it is held
    // (it may still grow) until the stream ends — stop() ends it.
    await waitFor(() => mem.count >= 159, { timeout: 30_000, message: () => `159 pieces of 64 KiB, have ${mem.count}` });
    const report = await agg.stop({ timeoutMs: 10_000 });
    const total = mem.records.reduce((n, r) => n + r.message.length, 0);
    expect(total).toBe(10 * 1024 * 1024);
    expect(Math.max(...mem.records.map((r) => r.message.length))).toBeLessThanOrEqual(65_536);
    expect(mem.count).toBe(160);
    expect(report.sources.huge!.collector.truncatedLines).toBeGreaterThanOrEqual(159);
    expect(maxQueueBytes).toBeLessThanOrEqual(maxBytes);
  });

  it("a collector that ignores credit: the host stops reading its channel at the window plus a frame, counts it, and loses nothing", async () => {
    const window = 2_000;
    const total = 50_000;
    const mem = new MemorySink({ name: "mem" });
    const ignorer = fileURLToPath(new URL("../fixtures/hostile/credit-ignorer.mjs", import.meta.url));
    const agg = new Aggregator({ batch: { maxWaitMs: 10, maxRecords: 500 }, queue: { maxRecords: 1_000, whenFull: "block" }, credit: { records: window } })
      .addSource(
        new CommandSource({
          name: "flood",
          command: "true", // never run: the fixture takes the collector process over
          fields: { flood: total },
          execArgv: ["--import", pathToFileURL(ignorer).href],
          restart: { maxRestarts: 0 },
        }),
      )
      .addSink(mem);
    mem.block();
    await agg.start();
    const source = () => agg.metrics().sources.flood!;
    await waitFor(() => (source().collector.overCreditPauses ?? 0) >= 1, {
      timeout: 20_000,
      message: () => `the host to stop reading the flooding collector, got ${JSON.stringify(source())}`,
    });
    // While the sink is blocked, nothing more is read: the inbox stays at the window plus a frame (and the rest of
    // the pipe read in which the frame arrived), not the 50,000 records the collector sent.
    const paused = source();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(source().emitted).toBe(paused.emitted);
    expect(source().waiting).toBeLessThanOrEqual(window + 4 * 1024);
    expect(source().emitted).toBeLessThan(total / 5);
    mem.unblock();
    await mem.waitForCount(total, { timeout: 60_000 });
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: total }, (_, i) => i));
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sources.flood!.emitted).toBe(total);
    expect(report.sources.flood!.collector.overCreditPauses).toBeGreaterThanOrEqual(1);
  });
  it("a record whose bytes are not UTF-8 is dropped as unserializable, counted and announced; its neighbours arrive", async () => {
    // The collector's channel writes go through a socket whose write() turns one byte of the marked record into 0xFF.
    const corrupt = [
      `import net from "node:net";`,
      `const write = net.Socket.prototype.write;`,
      `net.Socket.prototype.write = function (chunk, ...rest) {`,
      `  const at = Buffer.isBuffer(chunk) ? chunk.indexOf("@@BAD@@") : -1;`,
      `  if (at >= 0) { chunk = Buffer.from(chunk); chunk[at + 2] = 0xff; }`,
      `  return write.call(this, chunk, ...rest);`,
      `};`,
    ].join("\n");
    const source = new CommandSource({
      name: "bytes",
      command: process.execPath,
      args: ["-e", `for (let i = 0; i < 20; i++) console.log(JSON.stringify({ msg: i === 7 ? "@@BAD@@" : "ok " + i, i }))`],
      parser: "json",
      restartOnExit: "never",
      execArgv: preload(corrupt),
    });
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } }).addSource(source).addSink(mem);
    const drops: { reason: string; count: number; source?: string; detail?: string }[] = [];
    agg.on("drop", (d) => drops.push(d));
    await agg.start();
    await waitFor(() => mem.count + drops.reduce((n, d) => n + d.count, 0) === 20, {
      message: () => `20 records delivered or dropped, got ${mem.count} and drops ${JSON.stringify(drops)}`,
    });
    const report = await agg.stop();
    expect(mem.records.map((r) => r.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(drops).toEqual([expect.objectContaining({ reason: "unserializable", count: 1, source: "bytes", detail: expect.stringContaining("UTF-8") })]);
    expect(report.dropped).toEqual({ unserializable: 1 });
  });

  it("the same while a stalled sink packs what arrives (frames taken in the pipe reads they came in)", async () => {
    // Records of about 300 bytes in frames of up to 256 KiB: most frames arrive over several pipe reads, and past the
    // first two batches every record comes while the stalled sink's queue packs.
    const total = 30_000;
    const bad = [12_000, 20_001, 29_998];
    const corrupt = [
      `import net from "node:net";`,
      `const write = net.Socket.prototype.write;`,
      `net.Socket.prototype.write = function (chunk, ...rest) {`,
      `  if (Buffer.isBuffer(chunk) && chunk.includes("@@BAD@@")) {`,
      `    chunk = Buffer.from(chunk);`,
      `    for (let at = chunk.indexOf("@@BAD@@"); at >= 0; at = chunk.indexOf("@@BAD@@", at + 1)) chunk[at + 2] = 0xff;`,
      `  }`,
      `  return write.call(this, chunk, ...rest);`,
      `};`,
    ].join("\n");
    const marked = JSON.stringify(bad);
    const source = new CommandSource({
      name: "bytes",
      command: process.execPath,
      args: ["-e", `const bad = new Set(${marked}); for (let i = 0; i < ${total}; i++) console.log(JSON.stringify({ msg: (bad.has(i) ? "@@BAD@@" : "ok ") + "x".repeat(250), i }))`],
      parser: "json",
      restartOnExit: "never",
      execArgv: preload(corrupt),
    });
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 500, maxWaitMs: 10 }, queue: { maxRecords: 40_000 } }).addSource(source).addSink(mem);
    const drops: { reason: string; count: number; source?: string; detail?: string }[] = [];
    agg.on("drop", (d) => drops.push(d));
    await agg.start();
    const dropped = () => drops.reduce((n, d) => n + d.count, 0);
    await waitFor(() => agg.metrics().sinks.mem!.queueRecords + dropped() === total, {
      timeout: 30_000,
      message: () => `${total} records queued or dropped, got ${JSON.stringify(agg.metrics().sinks.mem)} and drops ${JSON.stringify(drops)}`,
    });
    expect(agg.metrics().sinks.mem!.queueCompressedRecords).toBeGreaterThan(25_000);
    mem.unblock();
    await mem.waitForCount(total - bad.length, { timeout: 30_000 });
    const report = await agg.stop();
    expect(mem.records.map((r) => r.i)).toEqual(Array.from({ length: total }, (_, i) => i).filter((i) => !bad.includes(i)));
    expect(drops.every((d) => d.reason === "unserializable" && d.source === "bytes" && d.detail?.includes("UTF-8"))).toBe(true);
    expect(report.dropped).toEqual({ unserializable: bad.length });
  }, 60_000);
});
