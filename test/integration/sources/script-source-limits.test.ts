// ScriptSource's emit() and log against what a careless collector does: emit() calls that are not awaited (bounded
// to a credit window, the rest dropped and counted), objects whose JSON is not a record (refused in the child and
// counted, never sent for the host to drop), and log calls with values that have no text (never thrown).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import type { AggregatorOptions } from "../../../src/options.js";
import type { DropEvent, SourceLogEvent } from "../../../src/events.js";
import { ScriptSource } from "../../../src/sources/script-source.js";
import { waitFor } from "../../helpers/wait-for.js";

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const collectorUrl = new URL("../../../src/collector.ts", import.meta.url).href;
const scratch = mkdtempSync(join(tmpdir(), "cla-script-limits-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A collector module in the scratch directory: `body` is the collector function's body ({ emit, signal, log } in scope). */
function collector(name: string, body: string): URL {
  const path = join(scratch, `${name}.mjs`);
  writeFileSync(
    path,
    `import { defineCollector } from ${JSON.stringify(collectorUrl)};
export default defineCollector(async ({ emit, signal, log, options }) => {
${body}
  if (!signal.aborted) await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
});
`,
  );
  return pathToFileURL(path);
}

function run(name: string, module: URL, options: AggregatorOptions = {}, scriptOptions: unknown = {}) {
  const mem = new MemorySink({ name: "mem" });
  const agg = new Aggregator({ batch: { maxWaitMs: 10 }, ...options })
    .addSource(new ScriptSource({ name, module, options: scriptOptions, execArgv: ["--import", tsxLoader] }))
    .addSink(mem);
  const logs: SourceLogEvent[] = [];
  agg.on("source:log", (e) => logs.push(e));
  return { mem, agg, logs };
}

const waitForLog = (logs: SourceLogEvent[], message: string) =>
  waitFor(() => logs.some((l) => l.message === message), {
    timeout: 20_000,
    message: () => `a "${message}" log, got ${JSON.stringify(logs.map((l) => l.message).slice(-5))}`,
  });

describe("ScriptSource emit() calls that are not awaited", () => {
  // One synchronous loop of calls: the first window's worth is sent on credit, one more window waits in the child,
  // and every later call is dropped at once. Exact counts: nothing runs in between that could return credit.
  const flood = collector(
    "flood",
    `  for (let i = 0; i < options.count; i++) emit({ message: "r" + i, n: i, pad: "x".repeat(options.pad) });
  log.info("looped");`,
  );

  it("wait in the child up to one credit window (records); later calls are dropped, counted and announced", async () => {
    const WINDOW = 100;
    const COUNT = 5_000;
    const { mem, agg, logs } = run("flood", flood, { credit: { records: WINDOW, bytes: 1 << 20 } }, { count: COUNT, pad: 10 });
    const drops: DropEvent[] = [];
    agg.on("drop", (d) => drops.push(d));
    mem.block();
    await agg.start();
    await waitForLog(logs, "looped");
    mem.unblock();
    await mem.waitForCount(2 * WINDOW, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });

    // Dropped in the collector: announced as drops too (as the collector reports them), and in the report's totals.
    expect(drops.every((d) => d.reason === "collector" && d.sink === undefined && d.source === "flood")).toBe(true);
    expect(drops.reduce((n, d) => n + d.count, 0)).toBe(COUNT - 2 * WINDOW);
    expect(drops[0]!.detail).toMatch(/^collector of "flood" dropped \d+ record\(s\): overflowRecords \(emit\(\) calls not awaited/);
    expect(report.dropped).toEqual({ collector: COUNT - 2 * WINDOW });
    expect(report.totals.dropped).toBe(COUNT - 2 * WINDOW);

    const s = report.sources.flood!;
    expect(s.collector.overflowRecords).toBe(COUNT - 2 * WINDOW);
    expect(s).toMatchObject({ linesRead: COUNT, emitted: 2 * WINDOW });
    expect(s.collector).toMatchObject({ unsent: 0, invalidRecords: 0 });
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: 2 * WINDOW }, (_, i) => i));
    expect(report.sinks.mem).toMatchObject({ delivered: 2 * WINDOW, droppedTotal: 0, pending: 0 });
    const warnings = logs.filter((l) => l.message.includes("overflowRecords"));
    expect(warnings).toHaveLength(1); // once: the counter carries the rest
    expect(warnings[0]).toMatchObject({ level: "warn" });
    expect(warnings[0]!.message).toContain(`emit() dropped a record: ${WINDOW} records`);
    expect(warnings[0]!.message).toContain("await emit()");
  });

  it("wait in the child up to one credit window (bytes of JSON), whatever the record count allows", async () => {
    const WINDOW_BYTES = 64 * 1024;
    const PAD = 1_000;
    const COUNT = 5_000;
    const { mem, agg, logs } = run("flood", flood, { credit: { records: 100_000, bytes: WINDOW_BYTES } }, { count: COUNT, pad: PAD });
    mem.block();
    await agg.start();
    await waitForLog(logs, "looped");
    mem.unblock();
    await waitFor(() => (agg.metrics().sources.flood!.collector.overflowRecords ?? 0) > 0 && agg.metrics().sinks.mem!.pending === 0, {
      timeout: 20_000,
      message: () => `the overflow counted and the sink settled, got ${JSON.stringify(agg.metrics().sources.flood)}`,
    });
    const report = await agg.stop({ timeoutMs: 10_000 });

    const s = report.sources.flood!;
    // Each record's JSON is over PAD bytes: at most a window's worth was sent on credit and as much again waited.
    const bound = 2 * (Math.ceil(WINDOW_BYTES / PAD) + 1);
    expect(s.emitted).toBeGreaterThan(0);
    expect(s.emitted).toBeLessThanOrEqual(bound);
    expect(s.emitted + s.collector.overflowRecords!).toBe(COUNT);
    expect(s.linesRead).toBe(COUNT);
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: s.emitted }, (_, i) => i));
  });

  it("awaited calls are never dropped, even arrays larger than the window while the sink is blocked", async () => {
    const WINDOW = 100;
    const BATCH = 5 * WINDOW;
    const BATCHES = 4;
    const module = collector(
      "batches",
      `  for (let b = 0; b < ${BATCHES}; b++) await emit(Array.from({ length: ${BATCH} }, (_, i) => ({ message: "b" + b, n: b * ${BATCH} + i })));
  log.info("looped");`,
    );
    const { mem, agg, logs } = run("batches", module, { credit: { records: WINDOW, bytes: 1 << 20 }, queue: { maxRecords: 150, whenFull: "block" } });
    mem.block();
    await agg.start();
    // Stalled behind the blocked sink with the first array only partly sent.
    await waitFor(() => agg.metrics().sources.batches!.emitted === 150 + WINDOW, {
      timeout: 20_000,
      message: () => `queue + window emitted, got ${JSON.stringify(agg.metrics().sources.batches)}`,
    });
    mem.unblock();
    await mem.waitForCount(BATCH * BATCHES, { timeout: 20_000 });
    await waitForLog(logs, "looped");
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.records.map((r) => r.n)).toEqual(Array.from({ length: BATCH * BATCHES }, (_, i) => i));
    expect(report.sources.batches).toMatchObject({ linesRead: BATCH * BATCHES, emitted: BATCH * BATCHES });
    expect(report.sources.batches!.collector).toMatchObject({ overflowRecords: 0, unsent: 0 });
  });
});

describe("ScriptSource emit() of a record over the 16 MiB limit", () => {
  it("drops it in the child, counted as oversizedRecords as for every source, and ships the next one", async () => {
    const module = collector(
      "huge-record",
      `  await emit({ message: "before", n: 0 });
  await emit({ message: "huge", blob: "x".repeat(20 * 1024 * 1024) });
  await emit({ message: "after", n: 1 });`,
    );
    const { mem, agg, logs } = run("huge", module);
    await agg.start();
    await mem.waitForCount(2, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.messages()).toEqual(["before", "after"]);
    expect(report.sources.huge!.collector).toMatchObject({ oversizedRecords: 1, invalidRecords: 0 });
    expect(logs.map((l) => l.message)).toContainEqual(expect.stringContaining("counted as oversizedRecords"));
  });
});

describe("ScriptSource emit() of a record with Errors in it", () => {
  it("ships them as write() does: a message Error as its text, one in another field as its type, message, stack and own fields", async () => {
    const module = collector(
      "errors",
      `  const cause = Object.assign(new Error("disk full"), { code: "ENOSPC", path: "/var/x" });
  class Custom extends Error { toJSON() { return { custom: true }; } }
  const record = { message: new TypeError("bad input"), error: cause, reason: new Custom("c"), plain: { nested: new Error("deep") } };
  await emit(record);
  await emit({ message: "after", unchanged: record.error instanceof Error });`,
    );
    const { mem, agg } = run("errors", module);
    await agg.start();
    await mem.waitForCount(2, { timeout: 20_000 });
    await agg.stop({ timeoutMs: 10_000 });
    const [r, after] = mem.records;
    expect(r!.message).toBe("TypeError: bad input");
    expect(r!.error).toMatchObject({ type: "Error", message: "disk full", code: "ENOSPC", path: "/var/x" });
    expect((r!.error as { stack_trace?: string }).stack_trace).toMatch(/^Error: disk full\n\s+at /);
    // A toJSON() decides its fields, as JSON.stringify would; ECS's are added beside them.
    expect(r!.reason).toMatchObject({ custom: true, type: "Error", message: "c" });
    // Only top-level fields, as write(): a nested Error is what JSON makes of it.
    expect(r!.plain).toEqual({ nested: {} });
    // The emitted object itself is not changed.
    expect(after).toMatchObject({ message: "after", unchanged: true });
  });
});

describe("ScriptSource emit() of objects whose JSON is not a record", () => {
  it("refuses them in the child (counted as invalidRecords, announced, never thrown); a toJSON returning an object is the record", async () => {
    const module = collector(
      "odd-records",
      `  const outcomes = [];
  const attempt = async (label, value) => {
    try {
      await emit(value);
      outcomes.push(label + ": ok");
    } catch (e) {
      outcomes.push(label + ": threw " + String(e && e.message));
    }
  };
  await attempt("first", { message: "first", n: 0 });
  await attempt("map", new Map([["message", "in a map"]]));
  await attempt("set", new Set([1]));
  await attempt("promise", Promise.resolve({ message: "not awaited" }));
  await attempt("weakmap", new WeakMap());
  await attempt("toJSON string", { message: "hidden", toJSON() { return "x"; } });
  await attempt("toJSON undefined", { toJSON() { return undefined; } });
  await attempt("toJSON array", { toJSON() { return [1]; } });
  await attempt("date", new Date(0));
  await attempt("toJSON throws", { toJSON() { throw Object.create(null); } });
  await attempt("nested toJSON", { toJSON() { return { message: "inner", toJSON() { return 1; } }; } });
  await attempt("in an array", [new Map(), { message: "beside a map", n: 2 }]);
  class Entry {
    constructor() { this.secret = "not in toJSON"; }
    toJSON() { return { message: "from toJSON", n: 1 }; }
  }
  await attempt("class toJSON", new Entry());
  await attempt("last", { message: "last", n: 3 });
  await emit({ message: "outcomes", outcomes });`,
    );
    const { mem, agg, logs } = run("odd", module);
    await agg.start();
    await mem.waitForCount(5, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });

    expect(mem.messages()).toEqual(["first", "beside a map", "from toJSON", "last", "outcomes"]);
    const outcomes = mem.records.at(-1)!.outcomes as string[];
    expect(outcomes.filter((o) => !o.endsWith(": ok"))).toEqual([]);
    // toJSON's object is the record, enriched like any other; the instance's own fields are not (as with JSON)
    expect(mem.records[2]).toMatchObject({ message: "from toJSON", n: 1, service: { name: "odd" } });
    expect(mem.records[2]!.secret).toBeUndefined();
    expect(report.sources.odd).toMatchObject({ linesRead: 16, emitted: 5 });
    expect(report.sources.odd!.collector).toMatchObject({ invalidRecords: 11 });
    // Dropped in the child (reported as collector drops), none of them reaching the host for it to drop.
    expect(report.dropped).toEqual({ collector: 11 });
    expect(report.sinks.mem).toMatchObject({ delivered: 5, droppedTotal: 0 });
    const warnings = logs.filter((l) => l.message.startsWith("emit() dropped a record"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain("got a Map");
  });
});

describe("ScriptSource log", () => {
  it("never throws into the collector: values without text are turned into text; the runtime's own warnings pass the rate limit", async () => {
    const module = collector(
      "odd-logs",
      `  const outcomes = [];
  const attempt = (label, f) => {
    try {
      f();
      outcomes.push(label + ": ok");
    } catch (e) {
      outcomes.push(label + ": threw " + String(e && e.message));
    }
  };
  const nullProto = Object.assign(Object.create(null), { a: 1 });
  attempt("null-prototype message", () => log.info(nullProto));
  attempt("throwing toString", () => log.warn({ toString() { throw new Error("no text"); } }));
  attempt("symbol", () => log.error(Symbol("s")));
  attempt("no text at all", () => log.debug({ toString() { throw 1; }, toJSON() { throw 2; } }));
  attempt("null-prototype fields", () => log.info("fields", nullProto));
  attempt("throwing getter in fields", () => log.info("getter", { get x() { throw new Error("nope"); } }));
  attempt("null-prototype message and fields", () => log.error(Object.create(null), Object.create(null)));
  log.info("odd logs done");
  // Over the rate limit: the user's logs are dropped (counted), the runtime's warning about the Map is not.
  for (let i = 0; i < 1000; i++) log.debug("chatter");
  await emit(new Map());
  await emit({ message: "outcomes", outcomes });`,
    );
    const { mem, agg, logs } = run("logs", module);
    await agg.start();
    await mem.waitForCount(1, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });

    const outcomes = mem.records[0]!.outcomes as string[];
    expect(outcomes.filter((o) => !o.endsWith(": ok"))).toEqual([]);
    const odd = logs.slice(0, logs.findIndex((l) => l.message === "odd logs done"));
    expect(odd.map((l) => [l.level, l.message, l.fields])).toEqual([
      ["info", '{"a":1}', undefined],
      ["warn", "{}", undefined],
      ["error", "Symbol(s)", undefined],
      ["debug", "an object", undefined],
      ["info", "fields", { a: 1 }],
      ["info", "getter", { unserializable: true }],
      ["error", "{}", {}],
    ]);
    expect(report.sources.logs!.collector.logsDropped).toBeGreaterThan(0);
    expect(logs.find((l) => l.message.startsWith("emit() dropped a record"))).toMatchObject({ level: "warn" });
    expect(report.sources.logs!.collector).toMatchObject({ invalidRecords: 1 });
  });
});

describe("ScriptSource collector that calls process.exit() itself", () => {
  it("still hands over the records it emitted, and its counters, on the way out", async () => {
    const path = join(scratch, "exits.mjs");
    writeFileSync(
      path,
      `import { defineCollector } from ${JSON.stringify(collectorUrl)};
export default defineCollector(async ({ emit }) => {
  await emit({ message: "x" });
  await emit([{ message: "y" }, { message: "z" }]);
  process.exit(0);
});
`,
    );
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new ScriptSource({ name: "exits", module: pathToFileURL(path), restart: { maxRestarts: 0 }, execArgv: ["--import", tsxLoader] }))
      .addSink(mem);
    let failed = false;
    agg.on("source:failed", () => (failed = true));
    await agg.start();
    await waitFor(() => failed, { timeout: 20_000, message: "the collector to exit and its source to fail (no restarts)" });
    await mem.waitForCount(3, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(mem.messages()).toEqual(["x", "y", "z"]);
    expect(report.sources.exits).toMatchObject({ emitted: 3, settled: 3, linesRead: 3 });
  });
});
