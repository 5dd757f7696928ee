// removeSource(): what the collector read is settled before it writes its last checkpoint and exits, so a source
// added again under the same name resumes after it rather than reading it again. A stop() that comes meanwhile
// stops that collector too, by its own deadline.
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, CommandSource, FileSource, MemorySink, ScriptSource, type SourceCounters } from "../../../src/index.js";
import type { SourceExitEvent } from "../../../src/events.js";
import { busyCollector } from "../../helpers/busy-collector.js";
import { waitFor } from "../../helpers/wait-for.js";

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
/** Far beyond the test's timeout: a stop() that resolves at all did not wait for it. */
const NEVER_MS = 60_000;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-remove-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lines = (from: number, n: number): string =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ msg: `line ${from + i}`, n: from + i })).join("\n") + "\n";

describe("removeSource", () => {
  it("waits for the sinks to settle what the source read; re-added, it resumes without duplicates", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, lines(0, 200));
    // A slow sink (300 ms a batch of 50): most of the 200 records are still undelivered when removeSource() is called.
    const mem = new MemorySink({ name: "mem" }).setLatency(300);
    const agg = new Aggregator({ checkpointDir: join(dir, "cp"), batch: { maxRecords: 50, maxWaitMs: 10 } }).addSink(mem);
    const source = () => new FileSource({ name: "app", paths: [file], parser: "json", pollIntervalMs: 20 });
    agg.addSource(source());
    await agg.start();
    await waitFor(() => agg.metrics().sources.app?.emitted === 200, { timeout: 10_000, message: "the collector did not read the 200 lines" });
    const counters = await agg.removeSource("app", { timeoutMs: 10_000 });
    expect(counters).toMatchObject({ emitted: 200, settled: 200 });
    expect(mem.records).toHaveLength(200);

    agg.addSource(source());
    appendFileSync(file, lines(200, 10));
    await mem.waitForCount(210, { timeout: 10_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    // The report adds up both incarnations of "app": the removed one's 200 and the new one's 10.
    expect(report.sources.app).toMatchObject({ kind: "file", emitted: 210, settled: 210 });
    const seen = mem.records.map((r) => r.n as number);
    expect(seen).toHaveLength(210);
    expect(new Set(seen).size).toBe(210);
  });

  it("at its deadline, records still waiting for queue room are dropped as sourceRemoved, counted and announced", async () => {
    const file = join(dir, "many.log");
    writeFileSync(file, lines(0, 20_000));
    const stuck = new MemorySink({ name: "stuck" }).neverAnswer();
    const agg = new Aggregator({ queue: { maxRecords: 500, whenFull: "block" }, batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(stuck);
    agg.addSource(new FileSource({ name: "f", paths: [file], parser: "json" }));
    const drops: Array<{ reason: string; count: number; source: string | undefined }> = [];
    agg.on("drop", (e) => drops.push({ reason: e.reason, count: e.count, source: e.source }));
    await agg.start();
    await waitFor(() => (agg.metrics().sources.f?.waiting ?? 0) > 0, { timeout: 10_000, message: "records waiting for queue room" });
    const counters = await agg.removeSource("f", { timeoutMs: 300 });
    // Counted once: dropped, and no longer waiting.
    const left = counters.emitted - counters.admitted;
    expect(left).toBeGreaterThan(0);
    expect(counters.waiting).toBe(0);
    expect(drops.filter((d) => d.reason === "sourceRemoved")).toEqual([{ reason: "sourceRemoved", count: left, source: "f" }]);
    const report = await agg.stop({ timeoutMs: 200 });
    expect(report.dropped.sourceRemoved).toBe(left);
    expect(report.sources.f?.waiting ?? 0).toBe(0);
  });

  it("a stop() while it waits for the sinks stops the collector by the stop's deadline and reports the source", async () => {
    const stuck = new MemorySink({ name: "stuck" }).neverAnswer();
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(stuck);
    agg.addSource(
      new CommandSource({
        name: "cmd",
        parser: "plain",
        command: process.execPath,
        args: ["-e", "for (let i = 0; i < 5; i++) console.log('line ' + i); setInterval(() => {}, 60_000)"],
      }),
    );
    await agg.start();
    await waitFor(() => agg.metrics().sources.cmd?.admitted === 5, { timeout: 10_000, message: "the 5 lines were not admitted" });
    const pid = agg.metrics().sources.cmd!.pid!;
    let removed: SourceCounters | undefined;
    // The stuck sink never settles them: removeSource() would wait its whole minute.
    const removing = agg.removeSource("cmd", { timeoutMs: 60_000 }).then((c) => (removed = c));
    // Until its removal resolves, it is still in metrics(), stopping.
    expect(agg.metrics().sources.cmd).toMatchObject({ kind: "command", state: "stopping", emitted: 5, pid });
    const report = await agg.stop({ timeoutMs: 500 });
    expect(report.sources.cmd).toMatchObject({ kind: "command", emitted: 5, admitted: 5, settled: 0 });
    expect(report.sinks.stuck).toMatchObject({ received: 5, pending: 5 });
    expect(report.timedOut).toBe(true);
    expect(isAlive(pid), `collector ${pid} outlived stop()`).toBe(false);
    // removeSource() resolved before stop() did.
    expect(removed).toMatchObject({ emitted: 5, admitted: 5, settled: 0 });
    await removing;
    expect(agg.metrics().sources.cmd).toBeUndefined();
  });

  it("the report has what the sinks settled of a removed source's records after removeSource() stopped waiting", async () => {
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(mem);
    const printing = (name: string) =>
      new CommandSource({
        name,
        parser: "plain",
        command: process.execPath,
        args: ["-e", "for (let i = 0; i < 5; i++) console.log('line ' + i); setInterval(() => {}, 60_000)"],
      });
    agg.addSource(printing("one")).addSource(printing("two"));
    await agg.start();
    await waitFor(() => agg.metrics().sinks.mem!.received === 10, { timeout: 10_000, message: "the 10 lines did not reach the sink" });
    // The blocked sink settles nothing by their deadlines.
    expect(await agg.removeSource("one", { timeoutMs: 100 })).toMatchObject({ emitted: 5, admitted: 5, settled: 0 });
    expect(await agg.removeSource("two", { timeoutMs: 100 })).toMatchObject({ emitted: 5, admitted: 5, settled: 0 });
    mem.unblock();
    await mem.waitForCount(10);
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(report.sources.one).toMatchObject({ emitted: 5, admitted: 5, settled: 5 });
    expect(report.sources.two).toMatchObject({ emitted: 5, admitted: 5, settled: 5 });
  });

  it(
    "a stop() kills a collector being removed by the stop's deadline, not by removeSource()'s or its killAfterMs",
    async () => {
      // A collector that ships one record, then (told by the `go` file) spins in a synchronous loop: it answers
      // neither STOP nor EXIT, so only a kill ends it.
      const { module, go, spinning } = busyCollector(dir);
      // Blocked: removeSource() waits for it to settle the record, past the stop.
      const mem = new MemorySink({ name: "mem" }).block();
      const agg = new Aggregator({ batch: { maxWaitMs: 0 } })
        .addSource(new ScriptSource({ name: "busy", module: pathToFileURL(module), killAfterMs: NEVER_MS, execArgv: ["--import", tsxLoader] }))
        .addSink(mem);
      const exits: SourceExitEvent[] = [];
      agg.on("source:exit", (e) => exits.push(e));
      await agg.start();
      await waitFor(() => mem.inFlight === 1, { timeout: 20_000, message: "the record before the loop was not sent" });
      writeFileSync(go, "");
      await waitFor(() => existsSync(spinning), { timeout: 20_000, message: "the collector did not enter its synchronous loop" });
      let removed: SourceCounters | undefined;
      const removing = agg.removeSource("busy", { timeoutMs: NEVER_MS }).then((c) => (removed = c));
      const report = await agg.stop({ timeoutMs: 1_000 });
      expect(exits).toEqual([expect.objectContaining({ source: "busy", forceKilled: true, signal: "SIGKILL" })]);
      expect(report.sources.busy).toMatchObject({ kind: "script", emitted: 1, admitted: 1, settled: 0 });
      expect(report.sinks.mem).toMatchObject({ received: 1, pending: 1 });
      expect(removed).toMatchObject({ emitted: 1, admitted: 1, settled: 0 });
      await removing;
    },
    30_000,
  );

  it.each(["removeSource()", "stop()"])("%s of a source whose collector is still starting reports no crash", async (how) => {
    // A module that takes a minute to load: its collector says READY only after the test is over.
    const module = join(dir, "slow-import.mjs");
    writeFileSync(module, "await new Promise((resolve) => setTimeout(resolve, 60_000));\nexport default undefined;\n");
    const agg = new Aggregator().addSink(new MemorySink({ name: "mem" }));
    const errors: string[] = [];
    agg.on("source:error", (e) => errors.push(`${e.error.code}: ${e.error.message}`));
    const exits: SourceExitEvent[] = [];
    agg.on("source:exit", (e) => exits.push(e));
    await agg.start();
    agg.addSource(new ScriptSource({ name: "late", module: pathToFileURL(module), startTimeoutMs: NEVER_MS, killAfterMs: 1_000 }));
    await waitFor(() => agg.metrics().sources.late?.pid !== undefined, { timeout: 20_000, message: "the collector was not spawned" });
    expect(agg.metrics().sources.late!.state).toBe("starting");
    if (how === "removeSource()") await agg.removeSource("late", { timeoutMs: 10_000 });
    await agg.stop({ timeoutMs: 10_000 });
    expect(exits).toEqual([expect.objectContaining({ source: "late", expected: true })]);
    // Before, its start's failure ("exited before it was ready (SIGTERM)") came out as ERR_COLLECTOR_CRASHED.
    expect(errors).toEqual([]);
  });
});


function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}