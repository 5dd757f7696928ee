// removeSource(): what the collector read is settled before it writes its last checkpoint and exits, so a source
// added again under the same name resumes after it rather than reading it again.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, FileSource, MemorySink } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

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
});
