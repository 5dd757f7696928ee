// A full disk under a FileSink (a file or dead-letter sink): every write fails with the kernel's own ENOSPC, because
// the sink's path is a symlink to /dev/full. The promise: nothing is lost or half-written, the failures are visible
// as retries with the errno, and once there is room again (the path becomes a regular file) delivery resumes by
// itself and every record arrives exactly once.
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Aggregator, FileSink } from "../../src/index.js";
import { recordScenario, SequenceGenerator, SequenceTracker } from "../helpers/sequence.js";
import { waitFor } from "../helpers/wait-for.js";

const dir = mkdtempSync(join(tmpdir(), "cla-diskfull-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!existsSync("/dev/full"))("disk full (ENOSPC from /dev/full)", () => {
  it("FileSink: ENOSPC retries, counted by errno; after space returns every record is written exactly once", async () => {
    const path = join(dir, "out.ndjson");
    symlinkSync("/dev/full", path);
    const SENT = 5_000;
    const agg = new Aggregator({
      queue: { maxRecords: 10_000, whenFull: "block" },
      batch: { maxRecords: 250, maxWaitMs: 5 },
      retry: { baseDelayMs: 5, maxDelayMs: 50 },
    }).addSink(new FileSink({ name: "file", path, fsync: "never" }));
    const reasons = new Map<string, number>();
    agg.on("retry", (e) => reasons.set(e.reason, (reasons.get(e.reason) ?? 0) + 1));
    await agg.start();
    const gen = new SequenceGenerator();
    // Accepted into the queue (it holds them all): the disk is full, so nothing can be written yet.
    await agg.write(gen.records(SENT));
    await waitFor(() => (reasons.get("ENOSPC") ?? 0) >= 10, {
      timeout: 20_000,
      message: () => `10 retries with reason ENOSPC, have ${JSON.stringify([...reasons])}`,
    });
    expect(agg.metrics().sinks.file!.delivered).toBe(0);
    // Room again: the path becomes a regular file the sink creates on its next attempt.
    unlinkSync(path);
    await waitFor(() => agg.metrics().sinks.file!.delivered === SENT, {
      timeout: 20_000,
      message: () => `all ${SENT} delivered after space returned, have ${agg.metrics().sinks.file!.delivered}`,
    });
    const report = await agg.stop({ timeoutMs: 10_000 });
    const t = new SequenceTracker();
    t.addJson(readFileSync(path, "utf8").split("\n").filter((l) => l.length > 0));
    const r = recordScenario(t.report("disk full under a FileSink (ENOSPC), then room again", gen.sentSeqs(), { enospcRetries: reasons.get("ENOSPC")! }));
    expect(r).toMatchObject({ sent: SENT, unique: SENT, duplicates: 0, missing: 0, unexpected: 0 });
    expect(report.sinks.file).toMatchObject({ received: SENT, delivered: SENT, pending: 0, droppedTotal: 0 });
  });
});
