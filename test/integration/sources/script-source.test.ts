// ScriptSource through real collector children: the user's defineCollector() module gets records out through a
// credit-aware emit, its log reaches the host, crashes restart, bad modules fail start(), stop aborts the signal.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Aggregator, CollectorError, InvalidOptionError, MemorySink } from "../../../src/index.js";
import type { SourceLogEvent } from "../../../src/events.js";
import { ScriptSource } from "../../../src/sources/script-source.js";
import { defineCollector, isCollectorDefinition } from "../../../src/collector.js";
import { watchSourceEnds } from "../../helpers/source-ends.js";
import { waitFor } from "../../helpers/wait-for.js";

const fixture = (name: string): URL => new URL(`../../fixtures/collectors/${name}`, import.meta.url);
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const scratch = mkdtempSync(join(tmpdir(), "cla-script-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function collectLogs(agg: Aggregator): SourceLogEvent[] {
  const logs: SourceLogEvent[] = [];
  agg.on("source:log", (e) => logs.push(e));
  return logs;
}

describe("ScriptSource", () => {
  it("ships emitted objects, arrays and parsed lines as enriched records; counts a dropped record; surfaces log; stop aborts the signal", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ hostName: "test-host", batch: { maxWaitMs: 10 } })
      .addSource(
        new ScriptSource({
          name: "basic",
          module: fixture("basic.mjs"),
          options: { url: "http://127.0.0.1:1/health", every: 100 },
          parser: "json",
          fields: { env: "test" },
        }),
      )
      .addSink(mem);
    const logs = collectLogs(agg);
    await agg.start();
    await mem.waitForCount(4, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });

    expect(report.timedOut).toBe(false);
    const records = mem.records;
    expect(records.map((r) => r.n)).toEqual([0, 1, 2, 4, 5]);
    expect(records[0]).toMatchObject({ message: "object record", log: { level: "warn" }, service: { name: "basic" }, host: { name: "test-host" }, env: "test" });
    expect(records[1]).toMatchObject({ message: "via msg", "@timestamp": "2024-05-01T10:00:00.000Z", service: { name: "basic" } });
    expect(records[2]).toMatchObject({ message: "json line", log: { level: "info" }, env: "test" });
    // a record that names its host keeps it (relays); the source still names the service
    expect(records[3]).toMatchObject({ message: "relayed", host: { name: "relay-1" }, service: { name: "basic" } });
    // emitted after the abort signal, before the function returned: still shipped
    expect(records[4]).toMatchObject({ message: "goodbye" });
    for (const r of records) expect(Date.parse(r["@timestamp"])).not.toBeNaN();

    expect(report.sources.basic).toMatchObject({ kind: "script", emitted: 5, linesRead: 7, parseErrors: 0 });
    expect(report.sources.basic!.collector).toMatchObject({ invalidRecords: 1, blankLines: 1, unsent: 0 });
    expect(report.sinks.mem).toMatchObject({ delivered: 5, pending: 0 });

    const messages = logs.map((l) => l.message);
    expect(logs[0]).toEqual({ source: "basic", level: "info", message: "started", fields: { name: "basic", options: { url: "http://127.0.0.1:1/health", every: 100 } } });
    const secret = logs.find((l) => l.message.startsWith("connecting"))!;
    expect(secret).toMatchObject({ level: "warn", fields: { password: "[redacted]", attempt: 1 } });
    expect(JSON.stringify(logs)).not.toContain("hunter2");
    expect(logs.find((l) => l.message.includes("dropped a record"))).toMatchObject({ level: "warn" });
    expect(logs.find((l) => l.message.includes("dropped a record"))!.message).toContain("BigInt");
    // the function saw the abort, returned, then close() ran without an error
    expect(messages.slice(-2)).toEqual(["aborted", "closed"]);
    expect(logs.at(-1)!.fields).toEqual({ error: null });
  });

  it("emit() is the backpressure: with a blocked sink the collector stalls at queue + credit, then everything arrives in order", async () => {
    const QUEUE = 500;
    const CREDIT = 100;
    const COUNT = 3_000;
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({
      credit: { records: CREDIT, bytes: 1 << 20 },
      queue: { maxRecords: QUEUE, whenFull: "block" },
      batch: { maxRecords: 50, maxWaitMs: 10 },
    })
      .addSource(new ScriptSource({ name: "loop", module: fixture("emit-loop.mjs"), options: { count: COUNT, reportMs: 20 } }))
      .addSink(mem);
    const progress: number[] = [];
    agg.on("source:log", (e) => {
      if (e.message === "progress") progress.push(e.fields!.sent as number);
    });
    await agg.start();

    // Stalled: several progress reports in a row show the same count (the loop waits inside emit()).
    // waitFor resolves with the predicate's truthy value: the stalled count.
    const stalledAt = (await waitFor(
      () => {
        const last = progress.slice(-5);
        return last.length === 5 && last[0]! > 0 && last.every((n) => n === last[0]) && last[0]!;
      },
      { timeout: 20_000, message: () => `5 equal progress reports, got ${JSON.stringify(progress.slice(-10))}` },
    )) as number;
    const bound = QUEUE + CREDIT;
    expect(stalledAt).toBeLessThan(COUNT);
    // The pending emit() holds one pushed record that has not resolved yet: at most `bound` records left the child.
    expect(stalledAt + 1).toBeLessThanOrEqual(bound);
    const atStall = agg.metrics();
    expect(atStall.sources.loop!.emitted).toBeLessThanOrEqual(bound);
    expect(atStall.sinks.mem!.queueRecords).toBeLessThanOrEqual(QUEUE);
    expect(atStall.sources.loop!.waiting).toBeLessThanOrEqual(CREDIT);
    expect(mem.count).toBe(0);

    // Still stalled 10 reports later: nothing grows while the sink is blocked.
    const seen = progress.length;
    await waitFor(() => progress.length >= seen + 10, { timeout: 20_000, message: "10 more progress reports" });
    expect(progress.slice(seen)).toEqual(Array.from({ length: progress.length - seen }, () => stalledAt));
    expect(agg.metrics().sources.loop!.emitted).toBe(atStall.sources.loop!.emitted);

    mem.unblock();
    await mem.waitForCount(COUNT, { timeout: 20_000 });
    await waitFor(() => progress.at(-1) === COUNT, { timeout: 20_000, message: () => `progress ${COUNT}, got ${progress.at(-1)}` });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(report.sources.loop).toMatchObject({ emitted: COUNT, admitted: COUNT });
    expect(report.sinks.mem).toMatchObject({ delivered: COUNT, pending: 0, droppedTotal: 0 });
  });

  it("credit goes back in batches, yet a child stalls at exactly queue + window and everything arrives when room trickles", async () => {
    // Window 40: credit is returned once a quarter (10) is owed, or at once when the child is down to its last
    // quarter. A queue of 3 admits a record or three at a time, below that quarter: with credit withheld the child
    // would stall early, or never finish.
    const WINDOW = 40;
    const QUEUE = 3;
    const COUNT = 400;
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({
      credit: { records: WINDOW, bytes: 1 << 20 },
      queue: { maxRecords: QUEUE, whenFull: "block" },
      batch: { maxRecords: 1, maxWaitMs: 1 },
    })
      .addSource(new ScriptSource({ name: "loop", module: fixture("emit-loop.mjs"), options: { count: COUNT } }))
      .addSink(mem);
    await agg.start();
    await waitFor(() => agg.metrics().sources.loop!.emitted === QUEUE + WINDOW, {
      timeout: 20_000,
      message: () => `${QUEUE + WINDOW} records emitted (queue + window), got ${agg.metrics().sources.loop!.emitted}`,
    });
    mem.unblock();
    await mem.waitForCount(COUNT, { timeout: 30_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    expect(report.sources.loop).toMatchObject({ emitted: COUNT, admitted: COUNT });
  });

  it("credit owed when the child runs low goes out as its records arrive, even with nothing admitted since", async () => {
    // One record per ms: the queue (5) fills while the child still has most of its window (40), so the 5 admitted
    // are owed but not yet worth a frame. The child then spends its window into the inbox; as those records arrive,
    // the host sees it run low and pays what it owes, so the child stalls at exactly queue + window.
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({ credit: { records: 40, bytes: 1 << 20 }, queue: { maxRecords: 5, whenFull: "block" }, batch: { maxRecords: 5 } })
      .addSource(new ScriptSource({ name: "slow", module: fixture("emit-loop.mjs"), options: { count: 100, everyMs: 1 } }))
      .addSink(mem);
    await agg.start();
    await waitFor(() => agg.metrics().sources.slow!.emitted === 45, {
      timeout: 20_000,
      message: () => `45 records emitted (queue + window), got ${agg.metrics().sources.slow!.emitted}`,
    });
    mem.unblock();
    await mem.waitForCount(100, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(report.sources.slow).toMatchObject({ emitted: 100, admitted: 100 });
  });

  it("stop() with a blocked sink: the stalled emit() returns on abort, the function ends, undelivered records are reported pending", async () => {
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({ credit: { records: 100, bytes: 1 << 20 }, queue: { maxRecords: 200, whenFull: "block" } })
      // killAfterMs far beyond the stop deadline: only the release on abort lets the function return in time.
      .addSource(new ScriptSource({ name: "loop", module: fixture("emit-loop.mjs"), options: { count: 1_000 }, killAfterMs: 60_000 }))
      .addSink(mem);
    const logs = collectLogs(agg);
    await agg.start();
    await waitFor(() => agg.metrics().sources.loop!.emitted === 300, {
      timeout: 20_000,
      message: () => `300 records emitted (queue + credit), got ${agg.metrics().sources.loop!.emitted}`,
    });
    const report = await agg.stop({ timeoutMs: 1_500 });
    const finished = logs.find((l) => l.message === "finished");
    expect(finished, JSON.stringify(logs.slice(-3))).toBeDefined();
    expect(finished!.fields!.sent).toBe(300);
    expect(report.timedOut).toBe(true);
    expect(report.sources.loop).toMatchObject({ emitted: 300 });
    expect(report.sinks.mem!.delivered).toBe(0);
    expect(report.sinks.mem!.pending + report.sources.loop!.waiting).toBe(300);
  });

  it("stop() shorter than killAfterMs: records waiting behind emit() are counted as unsent before the host's deadline", async () => {
    const collectorUrl = new URL("../../../src/collector.ts", import.meta.url).href;
    const module = join(scratch, "batches.mjs");
    writeFileSync(
      module,
      `import { defineCollector } from ${JSON.stringify(collectorUrl)};
export default defineCollector(async ({ emit, signal }) => {
  for (let b = 0; !signal.aborted; b++) await emit(Array.from({ length: 5000 }, (_, i) => ({ message: "b" + b + "-" + i })));
});
`,
    );
    const mem = new MemorySink({ name: "mem" }).block();
    // The default killAfterMs (5 s) is longer than stop()'s 2 s: the collector must fit its grace into the host's time.
    const agg = new Aggregator({ credit: { records: 1_000 }, queue: { maxRecords: 1_000, whenFull: "block" } })
      .addSource(new ScriptSource({ name: "batches", module: pathToFileURL(module), execArgv: ["--import", tsxLoader] }))
      .addSink(mem);
    await agg.start();
    await waitFor(() => agg.metrics().sources.batches!.linesRead >= 5_000, {
      timeout: 20_000,
      message: () => `a batch of 5,000 emitted, got ${JSON.stringify(agg.metrics().sources.batches)}`,
    });
    const report = await agg.stop({ timeoutMs: 2_000 });
    const s = report.sources.batches!;
    // Every record the function emitted is somewhere: sent to the host (emitted) or counted as never sent (unsent).
    expect(s.linesRead).toBeGreaterThanOrEqual(5_000);
    expect(s.emitted + (s.collector.unsent ?? 0)).toBe(s.linesRead);
    expect(s.collector.unsent).toBeGreaterThan(0);
  });

  it("a function that ignores the abort and keeps emitting: what it emits after its grace is counted as read and unsent", async () => {
    const collectorUrl = new URL("../../../src/collector.ts", import.meta.url).href;
    const module = join(scratch, "stubborn.mjs");
    writeFileSync(
      module,
      `import { defineCollector } from ${JSON.stringify(collectorUrl)};
export default defineCollector(async ({ emit }) => {
  for (let i = 0; ; i++) {
    await emit({ message: "m" + i });
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
});
`,
    );
    // Slow sends (300 ms a batch) keep a batch in flight when the grace ends: stop() drains it before it lets the
    // collector exit, so the function's emits every 2 ms surely fall between its grace and its exit.
    const mem = new MemorySink({ name: "mem" }).setLatency(300);
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new ScriptSource({ name: "stubborn", module: pathToFileURL(module), killAfterMs: 200, execArgv: ["--import", tsxLoader] }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(10, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    const s = report.sources.stubborn!;
    expect(s.collector.unsent).toBeGreaterThan(0);
    expect(s.emitted + (s.collector.unsent ?? 0)).toBe(s.linesRead);
  });

  it("a definition's parse function turns emitted strings into fields; a line it cannot parse is shipped and counted", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new ScriptSource({ name: "lines", module: fixture("lines.mjs"), parser: "json" }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(5, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.map((r) => [r.log?.level, r.message, r.parsedBy])).toEqual([
      ["info", "service started", "fixture"],
      ["warn", "disk 91% full", "fixture"],
      [undefined, "garbage", undefined],
      ["error", "boom", "fixture"],
      [undefined, "BIG 12345678901234567890", undefined],
    ]);
    expect(mem.records[2]!.error).toEqual({ type: "parse", message: "parser_threw" });
    expect(mem.records[4]!.error).toEqual({ type: "parse", message: "invalid_result" });
    expect(report.sources.lines).toMatchObject({ linesRead: 5, parseErrors: 2 });
    expect(report.sources.lines!.collector).toMatchObject({ invalidRecords: 0 });
  });

  it("restarts a collector whose function throws, reporting the error and its stack", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new ScriptSource({ name: "flaky", module: fixture("throws.mjs"), restart: { baseDelayMs: 10, maxDelayMs: 50, maxRestarts: 100 } }),
      )
      .addSink(mem);
    const restarts: number[] = [];
    const errors: CollectorError[] = [];
    agg.on("source:restart", (e) => restarts.push(e.restarts));
    agg.on("source:error", (e) => errors.push(e.error as CollectorError));
    const logs = collectLogs(agg);
    await agg.start();
    await waitFor(() => restarts.length >= 2, { timeout: 20_000, message: () => `2 restarts, saw ${restarts.length}` });
    await mem.waitForCount(2, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });

    expect(restarts.slice(0, 2)).toEqual([1, 2]);
    expect(errors[0]).toBeInstanceOf(CollectorError);
    expect(errors[0]!.code).toBe("ERR_COLLECTOR_CRASHED");
    expect(errors[0]!.message).toContain("poll failed: upstream answered 500");
    const thrown = logs.find((l) => l.level === "error")!;
    expect(thrown.message).toBe("the collector function threw");
    expect(String((thrown.fields!.error as { stack: string }).stack)).toContain("throws.mjs");
    expect(mem.messages().slice(0, 2)).toEqual(["before the throw", "before the throw"]);
    expect(report.sources.flaky!.restarts).toBeGreaterThanOrEqual(2);
  });

  it("a collector gone without its last word (process.exit in the script) is a crash: source:error ERR_COLLECTOR_CRASHED, then a restart", async () => {
    const collectorUrl = new URL("../../../src/collector.ts", import.meta.url).href;
    const module = join(scratch, "exits.ts");
    writeFileSync(module, `import { defineCollector } from ${JSON.stringify(collectorUrl)};\nexport default defineCollector(async ({ emit }) => {\n  await emit("about to exit");\n  process.exit(3);\n});\n`);
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new ScriptSource({ name: "exits", module: pathToFileURL(module), restart: { baseDelayMs: 10, maxDelayMs: 50, maxRestarts: 100 }, execArgv: ["--import", tsxLoader] }))
      .addSink(mem);
    const errors: CollectorError[] = [];
    const restarts: number[] = [];
    agg.on("source:error", (e) => errors.push(e.error as CollectorError));
    agg.on("source:restart", (e) => restarts.push(e.restarts));
    await agg.start();
    await waitFor(() => restarts.length >= 1 && errors.length >= 1, { timeout: 20_000, message: () => `a crash and a restart, saw ${errors.length} errors, ${restarts.length} restarts` });
    await agg.stop({ timeoutMs: 10_000 });
    expect(errors[0]!.code).toBe("ERR_COLLECTOR_CRASHED");
    expect(errors[0]!.message).toBe('collector "exits" exited with code 3 without saying why');
    expect(errors[0]!.exitCode).toBe(3);
  });

  it("restartOnExit: a function that returns or throws runs again only as asked, and one not run again ends its source", async () => {
    const collectorUrl = new URL("../../../src/collector.ts", import.meta.url).href;
    const write = (name: string, body: string): URL => {
      const module = join(scratch, `${name}.mjs`);
      writeFileSync(module, `import { defineCollector } from ${JSON.stringify(collectorUrl)};\nexport default defineCollector(async ({ emit }) => {\n${body}\n});\n`);
      return pathToFileURL(module);
    };
    const returns = write("returns", `await emit({ message: "once" });`);
    const throws = write("throws-once", `await emit({ message: "once" }); throw new Error("boom");`);
    const restart = { baseDelayMs: 1, maxDelayMs: 2, maxRestarts: 5 };
    const source = (name: string, module: URL, restartOnExit: "on-failure" | "never"): ScriptSource =>
      new ScriptSource({ name, module, restartOnExit, restart, execArgv: ["--import", tsxLoader] });
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(source("returnsNever", returns, "never"))
      .addSource(source("returnsOnFailure", returns, "on-failure"))
      .addSource(source("throwsNever", throws, "never"))
      .addSource(source("throwsOnFailure", throws, "on-failure"))
      .addSink(mem);
    const { stateAtExit, errors, restarted } = watchSourceEnds(agg);
    await agg.start();
    await waitFor(() => stateAtExit.size === 4 && restarted.has("throwsOnFailure"), {
      timeout: 20_000,
      message: () => `four exits and a restart; saw exits ${[...stateAtExit.keys()]}, restarts ${[...restarted]}`,
    });
    await agg.stop({ timeoutMs: 10_000 });
    expect(Object.fromEntries(stateAtExit)).toEqual({
      returnsNever: "stopped",
      returnsOnFailure: "stopped",
      throwsNever: "stopped",
      throwsOnFailure: "running", // a restart is scheduled right after the event
    });
    expect([...restarted]).toEqual(["throwsOnFailure"]);
    // A return that ends the source is no error; a throw is one.
    expect(errors).not.toContain("returnsNever");
    expect(errors).not.toContain("returnsOnFailure");
    expect(errors).toContain("throwsNever");
    for (const name of ["returnsNever", "returnsOnFailure", "throwsNever"]) {
      expect(mem.records.filter((r) => r.service?.name === name).map((r) => r.message), name).toEqual(["once"]);
    }
  });

  it.each([
    ["an uncaught exception", 'setTimeout(() => { throw new Error("uncaught in a timer"); }, 0);'],
    ["an unhandled rejection", 'void Promise.reject(new Error("nobody caught this"));'],
  ])("a collector that dies of %s still reports its counters (lines read, parse errors, invalid records)", async (_how, failure) => {
    const collectorUrl = new URL("../../../src/collector.ts", import.meta.url).href;
    const module = join(scratch, `dies-${failure.length}.mjs`);
    // 5 good records, 3 the engine cannot ship, 2 lines the json parser refuses; then it dies outside its function.
    writeFileSync(
      module,
      `import { defineCollector } from ${JSON.stringify(collectorUrl)};\n` +
        `export default defineCollector(async ({ emit, signal }) => {\n` +
        `  for (let i = 0; i < 5; i++) await emit({ message: "good " + i });\n` +
        `  await emit(42); await emit(null); await emit(true);\n` +
        `  await emit("not json {"); await emit("also not json");\n` +
        `  ${failure}\n` +
        `  await new Promise((resolve) => signal.addEventListener("abort", resolve));\n` +
        `});\n`,
    );
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new ScriptSource({ name: "dies", module: pathToFileURL(module), parser: "json", restartOnExit: "never", restart: { maxRestarts: 0 }, execArgv: ["--import", tsxLoader] }))
      .addSink(mem);
    const { stateAtExit, errors } = watchSourceEnds(agg);
    await agg.start();
    await waitFor(() => stateAtExit.has("dies"), { timeout: 20_000, message: "the collector's exit" });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(errors).toContain("dies");
    expect(mem.records.map((r) => r.message)).toEqual(["good 0", "good 1", "good 2", "good 3", "good 4", "not json {", "also not json"]);
    // Before, the host's EXIT answer to its FATAL ended it before its once-a-second STATS: 0 read, 0 errors. (Each
    // emit() counts as one read.)
    expect(report.sources.dies).toMatchObject({ emitted: 7, linesRead: 10, parseErrors: 2 });
    expect(report.sources.dies!.collector).toMatchObject({ invalidRecords: 3 });
  });

  it("start() rejects with a coded error when the module's default export is not a defineCollector() definition", async () => {
    const agg = new Aggregator()
      .addSource(new ScriptSource({ name: "bad", module: fixture("not-a-collector.mjs"), restart: { maxRestarts: 0 } }))
      .addSink(new MemorySink({ name: "mem" }));
    const error = await agg.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CollectorError);
    expect((error as CollectorError).code).toBe("ERR_COLLECTOR_CRASHED");
    expect((error as CollectorError).message).toContain("must `export default defineCollector(");
    expect((error as CollectorError).message).toContain("a function");
    expect(agg.state).toBe("stopped");
  });

  it("stop() does not wait past killAfterMs for a function that ignores the abort signal", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new ScriptSource({ name: "stubborn", module: fixture("ignores-abort.mjs"), killAfterMs: 200 }))
      .addSink(mem);
    const logs = collectLogs(agg);
    await agg.start();
    await mem.waitForCount(1, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.timedOut).toBe(false);
    expect(report.sources.stubborn).toMatchObject({ emitted: 1 });
    expect(report.sinks.mem).toMatchObject({ delivered: 1, pending: 0 });
    expect(logs.map((l) => l.message)).toContain("the collector function did not return within 200 ms of the abort signal");
  });

  it("runs a TypeScript collector through a TS loader given in execArgv (by absolute URL)", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new ScriptSource({
          name: "typed",
          module: fileURLToPath(fixture("typed.ts")), // an absolute path works as well as a URL
          options: { prefix: "tick", count: 25 },
          execArgv: ["--import", tsxLoader],
        }),
      )
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(25, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.messages()).toEqual(Array.from({ length: 25 }, (_, i) => `tick ${i}`));
    expect(report.sources.typed).toMatchObject({ emitted: 25, restarts: 0 });
  });

  describe("options are checked in the constructor", () => {
    const valid = { name: "s", module: fixture("basic.mjs") };
    it.each([
      [{ ...valid, module: "./basic.mjs" }, "Expected `module` to be a file URL or an absolute path"],
      [{ ...valid, module: new URL("https://example.com/c.js") }, "Expected `module` to be a file: URL, got `\"https://example.com/c.js\"`"],
      [{ ...valid, module: join(scratch, "missing.mjs") }, "Expected `module` to name an existing file"],
      [{ ...valid, module: undefined }, "got `undefined`"],
      [{ ...valid, options: { poll: { every: () => 1 } } }, "Expected `options.poll.every` to be JSON"],
      [{ ...valid, options: { since: new Date(0) } }, "Expected `options.since` to be JSON (null, a boolean, a finite number, a string, an array or a plain object), got an instance of Date"],
      [{ ...valid, options: { ratio: Number.NaN } }, "Expected `options.ratio` to be JSON"],
      [{ ...valid, options: { ids: [1, undefined] } }, "Expected `options.ids[1]` to be JSON"],
      [{ ...valid, multiline: "java" }, "Expected no `multiline` on a ScriptSource"],
      [{ ...valid, name: "" }, "Expected `name` to be a non-empty string"],
    ])("%#: %s", (options, message) => {
      expect(() => new ScriptSource(options as never)).toThrow(InvalidOptionError);
      expect(() => new ScriptSource(options as never)).toThrow(message);
    });

    it("rejects a circular options object", () => {
      const options: Record<string, unknown> = {};
      options.self = options;
      expect(() => new ScriptSource({ ...valid, options })).toThrow("got a circular reference");
    });

    it("accepts an absolute path and a file URL string, and drops undefined option properties like JSON", () => {
      const path = join(scratch, "ok.mjs");
      writeFileSync(path, "export default 1;\n");
      expect(new ScriptSource({ name: "a", module: path }).name).toBe("a");
      expect(new ScriptSource({ name: "b", module: pathToFileURL(path).href, options: { a: undefined, b: [1, "x", null] } }).kind).toBe("script");
    });
  });

  it("defineCollector() brands its definition and checks its arguments", () => {
    const def = defineCollector(async () => {}, { close: () => {} });
    expect(isCollectorDefinition(def)).toBe(true);
    expect(isCollectorDefinition({ run: async () => {} })).toBe(false);
    expect(Object.keys(def)).toEqual(["run", "close", "parse"]);
    expect(() => defineCollector("nope" as never)).toThrow(InvalidOptionError);
    expect(() => defineCollector(async () => {}, { close: 1 as never })).toThrow("Expected `close` to be a function, got `1` (number)");
  });
  it("starts collectors with a small young generation and one V8 background thread, and a source's execArgv overrides them", async () => {
    const flagsOf = async (execArgv?: string[]): Promise<{ execArgv: string[]; newSpaceBytes: number }> => {
      const mem = new MemorySink({ name: "mem" });
      const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
        .addSource(new ScriptSource({ name: "flags", module: fixture("flags.mjs"), ...(execArgv === undefined ? {} : { execArgv }) }))
        .addSink(mem);
      await agg.start();
      await mem.waitForCount(1, { timeout: 20_000 });
      await agg.stop({ timeoutMs: 10_000 });
      return mem.records[0] as unknown as { execArgv: string[]; newSpaceBytes: number };
    };
    const ours = await flagsOf();
    expect(ours.execArgv.slice(0, 2)).toEqual(["--max-semi-space-size=2", "--v8-pool-size=1"]);
    const theirs = await flagsOf(["--max-semi-space-size=32"]);
    expect(theirs.execArgv.indexOf("--max-semi-space-size=32")).toBeGreaterThan(theirs.execArgv.indexOf("--max-semi-space-size=2"));
    // V8 takes the last value: the source's own flag is the one in force (its young generation grew further).
    expect(ours.newSpaceBytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(theirs.newSpaceBytes).toBeGreaterThan(4 * 1024 * 1024);
  });
});
