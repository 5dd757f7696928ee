// A ScriptSource collector's commit(cursor): written to checkpointDir only once every record emitted before it is
// settled by every sink, handed back as `cursor` to the next run, never written for records still pending.
// Real collector children and real files; the waits are for states (records, file contents), not for durations.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, MemorySink, ScriptSource } from "../../../src/index.js";
import type { SourceLogEvent } from "../../../src/events.js";
import { waitFor } from "../../helpers/wait-for.js";

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const collectorUrl = new URL("../../../src/collector.ts", import.meta.url).href;

let dir: string;
let checkpoints: string;
const running: Aggregator[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-cursor-"));
  checkpoints = join(dir, "state");
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.stop({ timeoutMs: 5_000 }).catch(() => undefined)));
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A paged API reader: from page `cursor ?? 0` to `options.pages`, it emits a page's 10 records (awaited) and then
 * commits the next page number. It logs the cursor it started from, and what commit() of a function threw.
 */
function pager(): URL {
  const file = join(dir, "pager.mjs");
  writeFileSync(
    file,
    `import { defineCollector } from ${JSON.stringify(collectorUrl)};
export default defineCollector(async ({ emit, commit, cursor, options, signal, log }) => {
  log.info("start", { cursor: cursor ?? null });
  try { commit(() => 1); } catch (e) { log.info("commit threw", { code: e.code }); }
  for (let page = cursor ?? 0; page < options.pages; page++) {
    const records = [];
    for (let i = 0; i < 10; i++) records.push({ message: "r", n: page * 10 + i });
    await emit(records);
    commit(page + 1);
  }
  await new Promise((resolve) => signal.addEventListener("abort", resolve));
});
`,
  );
  return pathToFileURL(file);
}

async function run(pages: number, mem: MemorySink): Promise<{ agg: Aggregator; logs: SourceLogEvent[] }> {
  const agg = new Aggregator({ checkpointDir: checkpoints, batch: { maxWaitMs: 10 } })
    .addSource(new ScriptSource({ name: "pager", module: pager(), options: { pages }, execArgv: ["--import", tsxLoader] }))
    .addSink(mem);
  running.push(agg);
  const logs: SourceLogEvent[] = [];
  agg.on("source:log", (e) => logs.push(e));
  await agg.start();
  return { agg, logs };
}

const stored = (): unknown => {
  const file = join(checkpoints, "pager.json");
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { cursor?: unknown }).cursor : undefined;
};
const untilStored = (cursor: number): Promise<unknown> =>
  waitFor(() => stored() === cursor, { timeout: 20_000, message: () => `cursor ${cursor} in the checkpoint file, got ${JSON.stringify(stored())}` });
const numbers = (mem: MemorySink): unknown[] => mem.records.map((r) => r.n);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe("ScriptSource cursors", () => {
  it("a settled cursor is written and the next run resumes from it: nothing replayed, nothing skipped", async () => {
    const first = new MemorySink({ name: "mem" });
    const a = await run(3, first);
    await first.waitForCount(30, { timeout: 20_000 });
    await untilStored(3);
    await a.agg.stop({ timeoutMs: 10_000 });
    expect(numbers(first)).toEqual(range(0, 30));
    expect(a.logs.find((l) => l.message === "start")?.fields).toEqual({ cursor: null });
    expect(a.logs.find((l) => l.message === "commit threw")?.fields).toEqual({ code: "ERR_INVALID_OPTION" });

    const second = new MemorySink({ name: "mem" });
    const b = await run(5, second);
    await second.waitForCount(20, { timeout: 20_000 });
    await untilStored(5);
    await b.agg.stop({ timeoutMs: 10_000 });
    expect(b.logs.find((l) => l.message === "start")?.fields).toEqual({ cursor: 3 });
    expect(numbers(second)).toEqual(range(30, 50));
  });

  it("a cursor whose records are still pending is not written: the next run replays them", async () => {
    const blocked = new MemorySink({ name: "mem" });
    blocked.block();
    const a = await run(2, blocked);
    await waitFor(() => a.agg.metrics().sources.pager!.emitted === 20, {
      timeout: 20_000,
      message: () => `20 records at the host, got ${JSON.stringify(a.agg.metrics().sources.pager)}`,
    });
    const report = await a.agg.stop({ timeoutMs: 1_000 });
    expect(report.sinks.mem).toMatchObject({ delivered: 0, pending: 20 });
    expect(stored()).toBeUndefined();

    const open = new MemorySink({ name: "mem" });
    const b = await run(2, open);
    await open.waitForCount(20, { timeout: 20_000 });
    await untilStored(2);
    expect(b.logs.find((l) => l.message === "start")?.fields).toEqual({ cursor: null });
    expect(numbers(open)).toEqual(range(0, 20));
  });

  it("a one-shot script that returns has its last cursor written once its records settle: the next run sends nothing again", async () => {
    const file = join(dir, "backfill.mjs");
    writeFileSync(
      file,
      `import { defineCollector } from ${JSON.stringify(collectorUrl)};
export default defineCollector(async ({ emit, commit, cursor }) => {
  for (let page = cursor ?? 0; page < 5; page++) {
    await emit(Array.from({ length: 10 }, (_, i) => ({ message: "r", n: page * 10 + i })));
    commit(page + 1);
  }
});
`,
    );
    const backfill = async (mem: MemorySink): Promise<void> => {
      const agg = new Aggregator({ checkpointDir: checkpoints, batch: { maxWaitMs: 10 } })
        .addSource(new ScriptSource({ name: "backfill", module: pathToFileURL(file), restartOnExit: "never", execArgv: ["--import", tsxLoader] }))
        .addSink(mem);
      running.push(agg);
      const ended = new Promise((resolve) => agg.once("source:exit", resolve));
      await agg.start();
      await ended;
      await agg.stop({ timeoutMs: 10_000 });
    };
    // Slow deliveries: the function returns while its last pages are still in the sink.
    const first = new MemorySink({ name: "mem" }).setLatency(200);
    await backfill(first);
    expect(numbers(first)).toEqual(range(0, 50));
    const saved = JSON.parse(readFileSync(join(checkpoints, "backfill.json"), "utf8")) as { cursor?: unknown };
    // Before, the host let the collector exit at once: the cursors of its unsettled last pages were dropped.
    expect(saved.cursor).toBe(5);
    const second = new MemorySink({ name: "mem" });
    await backfill(second);
    expect(numbers(second)).toEqual([]);
  });

  it("a cursor committed before the run emits anything is written against what earlier runs settled", async () => {
    const mem = new MemorySink({ name: "mem" });
    const a = await run(1, mem);
    await mem.waitForCount(10, { timeout: 20_000 });
    await untilStored(1);
    await a.agg.stop({ timeoutMs: 10_000 });
    // Nothing left to read: the run commits cursor 1 again (a no-op), then page 1 is past `pages`, so it emits
    // nothing. Its own commit of a new cursor must still be written, with no record of its own to settle.
    const file = join(dir, "idle.mjs");
    writeFileSync(
      file,
      `import { defineCollector } from ${JSON.stringify(collectorUrl)};
export default defineCollector(async ({ commit, cursor, signal }) => {
  commit({ after: cursor });
  await new Promise((resolve) => signal.addEventListener("abort", resolve));
});
`,
    );
    const agg = new Aggregator({ checkpointDir: checkpoints })
      .addSource(new ScriptSource({ name: "pager", module: pathToFileURL(file), execArgv: ["--import", tsxLoader] }))
      .addSink(new MemorySink({ name: "mem" }));
    running.push(agg);
    await agg.start();
    await waitFor(() => JSON.stringify(stored()) === JSON.stringify({ after: 1 }), {
      timeout: 20_000,
      message: () => `cursor {"after":1} in the checkpoint file while the collector runs, got ${JSON.stringify(stored())}`,
    });
  });
});
