// End to end through a FileSource child: 200k numbered lines, two rename rotations and one copytruncate.
// Every number arrives, none twice; the only possible gap is the copytruncate window (lines written after the
// copy and destroyed by the truncate before the collector read them), which is produced on purpose and counted.
import { appendFileSync, copyFileSync, mkdtempSync, renameSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, FileSource, MemorySink } from "../../src/index.js";
import { waitFor } from "../helpers/wait-for.js";

const TOTAL = 200_000;
const dir = mkdtempSync(join(tmpdir(), "cla-rotation-"));
const cleanups: Array<() => void> = [];
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const c of cleanups.splice(0)) c();
});

describe("FileSource under rotation", () => {
  it("200k lines, rename ×2 and copytruncate ×1: no duplicates, missing only inside the copytruncate window", async () => {
    const file = join(dir, "app.log");
    const mem = new MemorySink({ name: "mem" });
    // A copytruncate copy caught by a rescan while it is still being written (empty, or shorter than the
    // fingerprint) must wait until it can be recognized: read from 0, it delivered 11k to 50k lines twice here under
    // load (1 run in 4 to 6).
    const agg = new Aggregator({ batch: { maxRecords: 2_000, maxWaitMs: 20 } })
      .addSource(new FileSource({ name: "app", paths: [join(dir, "app.log*")], pollIntervalMs: 10, globIntervalMs: 50 }))
      .addSink(mem);
    await agg.start();
    let next = 1;
    const write = (count: number): number[] => {
      const ns: number[] = [];
      let s = "";
      for (let i = 0; i < count && next <= TOTAL; i++, next++) {
        ns.push(next);
        s += `n ${next}\n`;
      }
      appendFileSync(file, s);
      return ns;
    };
    const caughtUp = (): Promise<unknown> => {
      const written = next - 1;
      return waitFor(() => mem.count >= written, { timeout: 30_000, message: () => `delivered ${written}, have ${mem.count}` });
    };
    let window: number[] = [];
    while (next <= TOTAL) {
      if (next === 50_001 || next === 100_001) {
        // Rename rotation: the old file moves aside (still matched by the glob), a new one starts.
        if (next === 100_001) renameSync(`${file}.1`, `${file}.2`);
        renameSync(file, `${file}.1`);
      } else if (next === 150_001) {
        await caughtUp();
        copyFileSync(file, `${file}.ct`);
        window = write(100); // after the copy: only in the original, which is about to be truncated
        truncateSync(file, 0);
      }
      write(1_000);
    }
    // Everything outside the window must arrive; then let a few more rescans pass to give a duplicate its chance.
    await waitFor(() => mem.count >= TOTAL - window.length, { timeout: 60_000, message: () => `${TOTAL - window.length} lines, have ${mem.count}` });
    const cycles = agg.metrics().sources.app!.collector.pollCycles ?? 0;
    await waitFor(() => (agg.metrics().sources.app!.collector.pollCycles ?? 0) > cycles + 1, { timeout: 10_000, message: "two more collector reports" });
    const report = await agg.stop({ timeoutMs: 10_000 });

    const counts = new Uint8Array(TOTAL + 1);
    for (const m of mem.messages()) counts[Number(m.slice(2))]!++;
    const missing: number[] = [];
    const duplicated: number[] = [];
    for (let n = 1; n <= TOTAL; n++) {
      if (counts[n] === 0) missing.push(n);
      else if (counts[n]! > 1) duplicated.push(n);
    }
    console.info(
      `[rotation] sent ${TOTAL}, unique ${TOTAL - missing.length}, duplicates ${duplicated.length}, missing ${missing.length} (copytruncate window ${window.length})`,
    );
    expect(duplicated).toEqual([]);
    const inWindow = new Set(window);
    expect(missing.filter((n) => !inWindow.has(n))).toEqual([]);
    // The copytruncate was seen as a truncation (renames were followed by identity, whatever the counter says).
    expect(report.sources.app!.collector.truncations).toBe(1);
  });

  it("rotated while the host was down, to a name the paths do not match: the next run reads the rest of the old file", async () => {
    const own = mkdtempSync(join(tmpdir(), "cla-rotation-down-"));
    cleanups.push(() => rmSync(own, { recursive: true, force: true }));
    const file = join(own, "svc.log");
    const checkpointDir = join(own, "cp");
    const run = async (expected: number) => {
      const mem = new MemorySink({ name: "mem" });
      const agg = new Aggregator({ checkpointDir, batch: { maxWaitMs: 10 } })
        .addSource(new FileSource({ name: "svc", paths: [file], pollIntervalMs: 10, globIntervalMs: 50 }))
        .addSink(mem);
      const logs: string[] = [];
      agg.on("source:log", (e) => logs.push(`${e.level} ${e.message}`));
      await agg.start();
      await waitFor(() => mem.count >= expected, { timeout: 30_000, message: () => `${expected} lines, have ${mem.count}` });
      const report = await agg.stop({ timeoutMs: 10_000 });
      return { messages: mem.messages(), logs, collector: report.sources.svc!.collector };
    };
    appendFileSync(file, lines(1, 1_000));
    expect((await run(1_000)).messages).toHaveLength(1_000);
    // While stopped: the service writes on, then logrotate renames the file and the service opens a new one.
    appendFileSync(file, lines(1_001, 1_500));
    renameSync(file, `${file}.1`);
    appendFileSync(file, lines(1_501, 1_600));
    const second = await run(600);
    expect([...second.messages].sort()).toEqual(numbersText(1_001, 1_600).sort());
    expect(second.collector).toMatchObject({ renamedWhileStopped: 1, goneWhileStopped: 0 });
    expect(second.logs).toContain(`info ${file} was renamed while the source was stopped: reading the rest of it at ${file}.1, from byte ${Buffer.byteLength(lines(1, 1_000))}`);
  });
});

function lines(from: number, to: number): string {
  let s = "";
  for (let n = from; n <= to; n++) s += `n ${n}\n`;
  return s;
}

function numbersText(from: number, to: number): string[] {
  return lines(from, to).trimEnd().split("\n");
}
