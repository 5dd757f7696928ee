// A tailing collector is SIGKILLed again and again (every ~5k lines shipped); each incarnation resumes from the
// last acked checkpoint. Nothing may go missing; replays are counted.
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Aggregator, FileSource, MemorySink } from "../../src/index.js";
import { SequenceGenerator, SequenceTracker, recordScenario } from "../helpers/sequence.js";
import { waitFor } from "../helpers/wait-for.js";

const dir = mkdtempSync(join(tmpdir(), "cla-collector-kill-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("collector SIGKILL, repeatedly", () => {
  it("a FileSource collector killed every ~5k lines: 0 missing", async () => {
    const total = 40_000;
    const file = join(dir, "app.log");
    const gen = new SequenceGenerator();
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ checkpointDir: join(dir, "cp"), batch: { maxRecords: 500, maxWaitMs: 10 }, credit: { records: 1_000, bytes: 1 << 20 } })
      .addSource(
        new FileSource({
          name: "app",
          paths: [file],
          pollIntervalMs: 10,
          restart: { baseDelayMs: 5, maxDelayMs: 20, maxRestarts: 100 },
        }),
      )
      .addSink(mem);
    let restarts = 0;
    agg.on("source:restart", () => restarts++);
    appendFileSync(file, gen.lines(5_000));
    await agg.start();
    let kills = 0;
    // Progress is counted in distinct seqs (replays after a kill do not count as progress).
    const unique = new Set<number>();
    let scanned = 0;
    const progress = (): number => {
      const msgs = mem.messages();
      for (; scanned < msgs.length; scanned++) unique.add(Number(msgs[scanned]!.slice(4)));
      return unique.size;
    };
    // The writer keeps appending while the harness kills the collector each time another ~5k lines arrived.
    while (gen.sent < total) {
      appendFileSync(file, gen.lines(5_000));
      const target = progress() + 5_000;
      await waitFor(() => progress() >= target, { timeout: 30_000, message: () => `5k more lines (have ${progress()}, want ${target})` });
      const pid = agg.metrics().sources.app!.pid!;
      process.kill(pid, "SIGKILL");
      kills++;
      await waitFor(() => restarts >= kills && agg.metrics().sources.app!.state === "running", {
        timeout: 10_000,
        message: () => `restart #${kills} (restarts ${restarts}, state ${agg.metrics().sources.app!.state})`,
      });
    }
    await waitFor(() => progress() === total, { timeout: 60_000, message: () => `all ${total} seqs, have ${progress()}` });
    await agg.stop({ timeoutMs: 10_000 });

    const tracker = new SequenceTracker();
    tracker.addAll(mem.messages().map((m) => Number(m.slice(4))));
    const r = recordScenario(tracker.report("collector SIGKILL every ~5k lines (FileSource, checkpoints)", total, { kills }));
    expect(kills).toBeGreaterThanOrEqual(6);
    expect(r.missing).toBe(0);
    expect(r.unique).toBe(total);
  });
});
