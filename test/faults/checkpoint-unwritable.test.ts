// The checkpoint directory cannot be written (as root, chmod stops nothing, so the directory is made impossible: a
// path under a regular file, or a file put where the directory was). The promise: a coded error event
// (`source:error` with ERR_CHECKPOINT: the file collector sends a LOG frame carrying the code, the host turns it into
// that event), delivery goes on, and once the directory is writable again the checkpoint catches up by itself, so
// that a restart resumes exactly where delivery stood.
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Aggregator, CheckpointError, FileSource, MemorySink, type AggregatorError } from "../../src/index.js";
import { waitFor } from "../helpers/wait-for.js";

const root = mkdtempSync(join(tmpdir(), "cla-cpfail-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
/** Stopped after each test even when it failed (stop() is idempotent). */
const running: Aggregator[] = [];
afterEach(async () => {
  for (const agg of running.splice(0)) await agg.stop({ timeoutMs: 10_000 });
});

const lines = (from: number, to: number): string => Array.from({ length: to - from }, (_, i) => `line ${from + i}\n`).join("");

/** The committed offset of the only file in `<checkpointDir>/app.json`, or -1 while there is none (or it is torn). */
function committedOffset(checkpointDir: string): number {
  try {
    const cp = JSON.parse(readFileSync(join(checkpointDir, "app.json"), "utf8")) as { files: Array<{ offset: number }> };
    return cp.files.length === 1 ? cp.files[0]!.offset : -1;
  } catch {
    return -1;
  }
}

async function start(dir: string, checkpointDir: string) {
  const mem = new MemorySink({ name: "mem" });
  const agg = new Aggregator({ checkpointDir, batch: { maxWaitMs: 10 } })
    .addSource(new FileSource({ name: "app", paths: [join(dir, "app.log")], pollIntervalMs: 20 }))
    .addSink(mem);
  const checkpointErrors: AggregatorError[] = [];
  const otherIncidents: string[] = [];
  agg.on("source:error", (e) => {
    if (e.error.code === "ERR_CHECKPOINT") checkpointErrors.push(e.error);
    else otherIncidents.push(`${e.error.code}: ${e.error.message}`);
  });
  agg.on("source:exit", (e) => {
    if (!e.expected) otherIncidents.push(`exit ${e.exitCode ?? e.signal}`);
  });
  running.push(agg);
  await agg.start();
  return { agg, mem, checkpointErrors, otherIncidents };
}

const until = (predicate: () => boolean, message: () => string, timeout = 30_000): Promise<unknown> =>
  waitFor(predicate, { timeout, message });

/** After a restart with the same checkpointDir, only a line appended now arrives: nothing before it is replayed. */
async function expectResumeAt(dir: string, checkpointDir: string, expectedOffset: number): Promise<void> {
  expect(committedOffset(checkpointDir)).toBe(expectedOffset);
  appendFileSync(join(dir, "app.log"), "after restart\n");
  const again = await start(dir, checkpointDir);
  await until(() => again.mem.count >= 1, () => "the line appended after the restart");
  const report = await again.agg.stop({ timeoutMs: 10_000 });
  expect(again.mem.messages()).toEqual(["after restart"]);
  expect(again.mem.records[0]!.log!.offset).toBe(expectedOffset);
  expect(report.sources.app!.collector.resumedFromCheckpoint).toBe(1);
  expect(again.checkpointErrors).toEqual([]);
}

describe("checkpointDir not writable", () => {
  it("a path under a regular file (ENOTDIR): ERR_CHECKPOINT, delivery continues, checkpoints resume once it can be created", async () => {
    const dir = mkdtempSync(join(root, "enotdir-"));
    const blocker = join(dir, "state");
    writeFileSync(blocker, "a regular file where the state directory should be\n");
    const checkpointDir = join(blocker, "checkpoints");
    writeFileSync(join(dir, "app.log"), lines(0, 100));
    const { agg, mem, checkpointErrors, otherIncidents } = await start(dir, checkpointDir);

    await until(() => mem.count >= 100, () => `100 records, have ${mem.count}`);
    await until(() => checkpointErrors.length >= 1, () => "an ERR_CHECKPOINT source:error (the first debounced write fails)");
    const first = checkpointErrors[0]!;
    expect(first.code).toBe("ERR_CHECKPOINT");
    // Made by the host from the code in the child's LOG frame, of the class that code belongs to.
    expect(first).toBeInstanceOf(CheckpointError);
    expect(first.source).toBe("app");
    expect(first.message).toContain("ENOTDIR");
    expect(first.message).toContain(join(checkpointDir, "app.json"));

    // Delivery does not depend on the checkpoint: more lines arrive while it still cannot be written.
    appendFileSync(join(dir, "app.log"), lines(100, 200));
    await until(() => mem.count >= 200, () => `200 records while checkpoints fail, have ${mem.count}`);
    expect(committedOffset(checkpointDir)).toBe(-1);

    // Make the directory possible; the store retries on its own (backoff from 2 s) and catches up to the end.
    unlinkSync(blocker);
    mkdirSync(blocker);
    const size = statSync(join(dir, "app.log")).size;
    await until(
      () => committedOffset(checkpointDir) === size,
      () => `the checkpoint at ${size} once writable, have ${committedOffset(checkpointDir)}`,
      40_000,
    );
    const errorsWhileBroken = checkpointErrors.length;
    const report = await agg.stop({ timeoutMs: 10_000 });
    console.info(`[checkpoint ENOTDIR] delivered ${mem.count}, ERR_CHECKPOINT events ${errorsWhileBroken}, resumed at ${size}`);
    expect(mem.messages()).toEqual(Array.from({ length: 200 }, (_, i) => `line ${i}`));
    expect(checkpointErrors).toHaveLength(errorsWhileBroken); // stop()'s final flush wrote without an error
    expect(otherIncidents).toEqual([]);
    expect(report.sources.app!.restarts).toBe(0);
    expect(report.sinks.mem).toMatchObject({ delivered: 200, pending: 0 });
    await expectResumeAt(dir, checkpointDir, size);
  });

  it("the directory replaced by a file while running: ERR_CHECKPOINT, delivery continues, catches up once it is back", async () => {
    const dir = mkdtempSync(join(root, "replaced-"));
    const checkpointDir = join(dir, "checkpoints");
    writeFileSync(join(dir, "app.log"), lines(0, 50));
    const { agg, mem, checkpointErrors, otherIncidents } = await start(dir, checkpointDir);
    await until(() => committedOffset(checkpointDir) === statSync(join(dir, "app.log")).size, () => "the first checkpoint");
    expect(checkpointErrors).toEqual([]);

    rmSync(checkpointDir, { recursive: true });
    writeFileSync(checkpointDir, "not a directory\n");
    appendFileSync(join(dir, "app.log"), lines(50, 150));
    // A write that came between the two steps above found no directory at all (ENOENT); the ones after, a file.
    const replaced = /EEXIST|ENOTDIR/;
    await until(
      () => checkpointErrors.some((e) => replaced.test(e.message)),
      () => `an ERR_CHECKPOINT source:error naming EEXIST or ENOTDIR after the directory became a file, have ${JSON.stringify(checkpointErrors.map((e) => e.message))}`,
    );
    for (const e of checkpointErrors) expect(e.message).toMatch(/EEXIST|ENOTDIR|ENOENT/);
    await until(() => mem.count >= 150, () => `150 records while checkpoints fail, have ${mem.count}`);

    unlinkSync(checkpointDir); // gone: the store creates the directory again (mode 0700) on its next attempt
    const size = statSync(join(dir, "app.log")).size;
    await until(
      () => committedOffset(checkpointDir) === size,
      () => `the checkpoint at ${size} once writable, have ${committedOffset(checkpointDir)}`,
      40_000,
    );
    const report = await agg.stop({ timeoutMs: 10_000 });
    console.info(`[checkpoint replaced] delivered ${mem.count}, ERR_CHECKPOINT events ${checkpointErrors.length}, resumed at ${size}`);
    expect(mem.messages()).toEqual(Array.from({ length: 150 }, (_, i) => `line ${i}`));
    expect(otherIncidents).toEqual([]);
    expect(report.sinks.mem).toMatchObject({ delivered: 150, pending: 0 });
    expect((statSync(checkpointDir).mode & 0o777).toString(8)).toBe("700");
    expect((statSync(join(checkpointDir, "app.json")).mode & 0o777).toString(8)).toBe("600");
    await expectResumeAt(dir, checkpointDir, size);
  });
});
