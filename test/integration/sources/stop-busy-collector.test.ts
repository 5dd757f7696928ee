// A collector whose event loop is stuck in a synchronous loop cannot answer STOP: the host gives it its grace
// (killAfterMs) to say DRAINED, then SIGTERM and SIGKILL, and does not wait for the stop deadline instead.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, MemorySink, ScriptSource } from "../../../src/index.js";
import type { SourceExitEvent } from "../../../src/events.js";
import { busyCollector } from "../../helpers/busy-collector.js";
import { waitFor } from "../../helpers/wait-for.js";

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/**
 * Far beyond this file's test timeouts: a stop() that resolves at all did not wait for it (it is also the stop
 * deadline or the killAfterMs that must not be waited for).
 */
const NEVER_MS = 60_000;
const TEST_TIMEOUT_MS = 30_000;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-busy-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function startBusy(killAfterMs: number, mem: MemorySink, shipped: () => boolean) {
  const c = busyCollector(dir);
  const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
    .addSource(new ScriptSource({ name: "busy", module: pathToFileURL(c.module), killAfterMs, execArgv: ["--import", tsxLoader] }))
    .addSink(mem);
  const exits: SourceExitEvent[] = [];
  agg.on("source:exit", (e) => exits.push(e));
  await agg.start();
  await waitFor(shipped, { timeout: 20_000, message: () => `the record before the loop, got ${JSON.stringify(agg.metrics().sources.busy)}` });
  writeFileSync(c.go, "");
  await waitFor(() => existsSync(c.spinning), { timeout: 20_000, message: "the collector to enter its synchronous loop" });
  return { agg, exits };
}

const killedByEscalation = expect.objectContaining({ source: "busy", expected: true, forceKilled: true, signal: "SIGKILL", exitCode: null });

describe("stopping a collector stuck in a synchronous loop", () => {
  it(
    "stop() kills it after killAfterMs instead of waiting for a far deadline; what it shipped is delivered",
    async () => {
      const mem = new MemorySink({ name: "mem" });
      const { agg, exits } = await startBusy(200, mem, () => mem.count === 1);
      const report = await agg.stop({ timeoutMs: NEVER_MS });
      expect(exits).toEqual([killedByEscalation]);
      expect(report.timedOut).toBe(false);
      expect(report.sources.busy).toMatchObject({ kind: "script", emitted: 1, settled: 1, waiting: 0 });
      expect(report.sinks.mem).toMatchObject({ received: 1, delivered: 1, pending: 0, droppedTotal: 0 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "removeSource() kills it after killAfterMs instead of waiting for a far deadline",
    async () => {
      const mem = new MemorySink({ name: "mem" });
      const { agg, exits } = await startBusy(200, mem, () => mem.count === 1);
      const counters = await agg.removeSource("busy", { timeoutMs: NEVER_MS });
      expect(exits).toEqual([killedByEscalation]);
      expect(counters).toMatchObject({ emitted: 1, settled: 1, waiting: 0 });
      const report = await agg.stop({ timeoutMs: 10_000 });
      expect(report.sinks.mem).toMatchObject({ delivered: 1, pending: 0 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "a stop deadline shorter than killAfterMs kills it at the deadline; the record a sink still holds is pending",
    async () => {
      const mem = new MemorySink({ name: "mem" }).block();
      const { agg, exits } = await startBusy(NEVER_MS, mem, () => mem.inFlight === 1);
      const report = await agg.stop({ timeoutMs: 1_000 });
      expect(exits).toEqual([killedByEscalation]);
      expect(report.timedOut).toBe(true);
      expect(report.sources.busy).toMatchObject({ emitted: 1, admitted: 1 });
      expect(report.sinks.mem).toMatchObject({ received: 1, delivered: 0, pending: 1 });
      expect(report.totals).toMatchObject({ received: 1, pending: 1 });
    },
    TEST_TIMEOUT_MS,
  );
});
