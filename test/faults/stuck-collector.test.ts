// A collector stuck on one line (a regex that backtracks without end) is alive and `running`, and ships nothing:
// the host must say so (ERR_COLLECTOR_STALLED), and stop() must still end it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, FileSource, MemorySink, type AggregatorError } from "../../src/index.js";
import { waitFor } from "../helpers/wait-for.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-stuck-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("a collector stuck on one line", () => {
  it("is reported as ERR_COLLECTOR_STALLED while its process lives, once; stop() kills it and reports", async () => {
    const file = join(dir, "app.log");
    // (a+)+$ against 40 a's and a "!": about 2^40 steps, far longer than this test.
    writeFileSync(file, `${"a".repeat(40)}!\n`);
    const errors: AggregatorError[] = [];
    const agg = new Aggregator()
      .addSource(new FileSource({ name: "app", paths: [file], parser: { regex: "^(?<message>(a+)+)$" }, killAfterMs: 300 }))
      .addSink(new MemorySink({ name: "mem" }));
    agg.on("source:error", (e) => errors.push(e.error));
    await agg.start();
    await waitFor(() => errors.length > 0, { timeout: 30_000, message: () => `a stall reported, state ${agg.metrics().sources.app!.state}` });
    expect(errors.map((e) => e.code)).toEqual(["ERR_COLLECTOR_STALLED"]);
    expect(errors[0]!.message).toMatch(/^collector "app" has sent nothing, not even its counters, for \d+ ms: it is stuck/);
    expect(agg.metrics().sources.app!.state).toBe("running");
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sources.app).toMatchObject({ emitted: 0 });
    // Said once per stall, not once a second.
    expect(errors).toHaveLength(1);
  });
});
