// FileTailer against real files in a temp dir: start positions, new files, checkpoints, flow control, rotation,
// truncation and hostile inputs. Waits are bounded polls on observable state (lines, stats().cycles), never sleeps.
import { execFileSync } from "node:child_process";
import { appendFileSync, chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointStore } from "../../../src/collector/checkpoint-store.js";
import { InvalidOptionError, StateError } from "../../../src/errors.js";
import { FileTailer, type FileTailerOptions, type TailLine, type TailProblem } from "../../../src/collector/tail/tailer.js";
import { waitFor } from "../../helpers/wait-for.js";

let dir: string;
const tailers: FileTailer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "cla-tail-"));
});

afterEach(async () => {
  for (const t of tailers.splice(0)) await t.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Whether the temp directory's file system records when a file was born (statx btime). */
function keepsBirthTimes(): boolean {
  const probe = path.join(os.tmpdir(), `cla-btime-${process.pid}`);
  writeFileSync(probe, "");
  try {
    return statSync(probe, { bigint: true }).birthtimeNs !== 0n;
  } finally {
    rmSync(probe, { force: true });
  }
}

function numbered(from: number, to: number, prefix = "line"): string {
  let s = "";
  for (let i = from; i <= to; i++) s += `${prefix} ${i}\n`;
  return s;
}

/** A started tailer with fast test timings and a line collector. */
async function tail(options: Partial<FileTailerOptions> & Pick<FileTailerOptions, "paths">, handler?: (lines: TailLine[]) => void) {
  const lines: TailLine[] = [];
  const problems: TailProblem[] = [];
  const tailer = new FileTailer(
    { pollIntervalMs: 10, globIntervalMs: 50, rotateWaitMs: 100, cwd: dir, ...options },
    handler ?? ((batch) => void lines.push(...batch)),
  );
  tailer.on("problem", (p) => problems.push(p));
  tailers.push(tailer);
  await tailer.start();
  return { tailer, lines, problems, texts: () => lines.map((l) => l.text) };
}

/** Waits until the tailer has run `n` more full passes (scan/poll/read): "nothing happened for n passes". */
async function passes(tailer: FileTailer, n: number): Promise<void> {
  const target = tailer.stats().cycles + n;
  await waitFor(() => tailer.stats().cycles >= target, { timeout: 10_000, message: `${n} more tailer passes` });
}

describe("FileTailer: start positions and discovery", () => {
  it("startAt beginning reads existing content with exact byte offsets; CRLF is stripped", async () => {
    writeFileSync(path.join(dir, "a.log"), "first\r\nsecond\nthird\n");
    const { lines, texts } = await tail({ paths: ["*.log"], startAt: "beginning" });
    await waitFor(() => lines.length === 3, { message: () => `3 lines, got ${JSON.stringify(texts())}` });
    expect(texts()).toEqual(["first", "second", "third"]);
    expect(lines.map((l) => [l.offset, l.end])).toEqual([[0, 7], [7, 14], [14, 20]]);
    expect(lines[0]!.path).toBe(path.join(dir, "a.log"));
  });

  it("startAt end skips existing content and reads only what is appended", async () => {
    const file = path.join(dir, "a.log");
    writeFileSync(file, numbered(1, 5));
    const { tailer, lines, texts } = await tail({ paths: ["a.log"], startAt: "end" });
    await passes(tailer, 3);
    expect(lines).toHaveLength(0);
    appendFileSync(file, "after 1\nafter 2\n");
    await waitFor(() => lines.length === 2, { message: () => `2 appended lines, got ${JSON.stringify(texts())}` });
    expect(texts()).toEqual(["after 1", "after 2"]);
    expect(lines[0]!.offset).toBe(Buffer.byteLength(numbered(1, 5)));
  });

  it("a file that appears after start is read from its first byte even with startAt end", async () => {
    const { tailer, lines, texts } = await tail({ paths: ["**/*.log"], startAt: "end" });
    const opens: string[] = [];
    tailer.on("open", (e) => opens.push(e.reason));
    mkdirSync(path.join(dir, "sub", "deeper"), { recursive: true });
    writeFileSync(path.join(dir, "sub", "deeper", "late.log"), "early bird\nsecond\n");
    await waitFor(() => lines.length === 2, { message: () => `2 lines of the late file, got ${JSON.stringify(texts())}` });
    expect(texts()).toEqual(["early bird", "second"]);
    expect(opens).toEqual(["new-file"]);
  });

  it("exclude patterns (base name and full path) are not read", async () => {
    writeFileSync(path.join(dir, "keep.log"), "keep\n");
    writeFileSync(path.join(dir, "old.log.gz"), "binary\n");
    mkdirSync(path.join(dir, "skip"));
    writeFileSync(path.join(dir, "skip", "x.log"), "skipped\n");
    const { tailer, texts } = await tail({ paths: ["**/*.{log,gz}"], exclude: ["*.gz", "skip/**"] });
    await waitFor(() => texts().length === 1, { message: "the kept file" });
    await passes(tailer, 3);
    expect(texts()).toEqual(["keep"]);
  });
});

describe("FileTailer: checkpoints", () => {
  it("resumes at the committed offset after a restart: nothing before it, everything after it", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    writeFileSync(file, numbered(1, 100));
    const store1 = new CheckpointStore({ dir: cpDir, source: "files" });
    const first = await tail({ paths: ["app.log"], checkpoints: store1 });
    await waitFor(() => first.lines.length === 100, { message: "100 lines in the first run" });
    // The sinks acknowledged lines 1..40 only.
    const acked = first.lines[39]!;
    expect(first.tailer.commit(acked.fileKey, acked.end)).toBe(true);
    await first.tailer.stop();
    const saved = JSON.parse(readFileSync(store1.file, "utf8")) as { files: { offset: number; fileKey: string }[] };
    expect(saved.files).toEqual([expect.objectContaining({ offset: acked.end, fileKey: acked.fileKey })]);

    appendFileSync(file, numbered(101, 150));
    const store2 = new CheckpointStore({ dir: cpDir, source: "files" });
    // startAt "end" would skip everything if the checkpoint were ignored.
    const second = await tail({ paths: ["app.log"], checkpoints: store2, startAt: "end" });
    await waitFor(() => second.lines.length === 110, { message: () => `110 lines (41..150), got ${second.lines.length}` });
    await passes(second.tailer, 3);
    expect(second.texts()).toEqual(numbered(41, 150).trimEnd().split("\n"));
    expect(second.lines[0]!.offset).toBe(acked.end);
    expect(second.lines[0]!.fileKey).toBe(acked.fileKey);
    expect(second.tailer.stats().resumedFromCheckpoint).toBe(1);
  });

  it("never persists the read offset: without a commit a restart re-reads (at-least-once)", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 10));
    const cpDir = path.join(dir, "cp");
    const first = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => first.lines.length === 10, { message: "10 lines" });
    await first.tailer.stop();
    const second = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => second.lines.length === 10, { message: "the same 10 lines again" });
    expect(second.lines[0]!.offset).toBe(0);
  });

  it("a checkpoint whose fingerprint no longer matches (inode reused by other content) starts at 0", async () => {
    // Real inode reuse cannot be forced portably (tmpfs hands out fresh inode numbers). Rewriting the file in place
    // keeps device+inode and changes the first bytes, which is exactly what the tailer sees on inode reuse.
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    writeFileSync(file, numbered(1, 200, "old"));
    const first = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => first.lines.length === 200, { message: "200 old lines" });
    const last = first.lines.at(-1)!;
    first.tailer.commit(last.fileKey, last.end);
    await first.tailer.stop();

    writeFileSync(file, numbered(1, 300, "new")); // same inode, longer than the old offset, different head
    const reasons: string[] = [];
    const second = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    second.tailer.on("open", (e) => reasons.push(e.reason));
    await waitFor(() => second.lines.length === 300, { message: () => `300 new lines, got ${second.lines.length}` });
    expect(second.lines[0]).toMatchObject({ text: "new 1", offset: 0 });
    expect(second.tailer.stats().fingerprintMismatches).toBe(1);
    expect(second.lines[0]!.fileKey).not.toBe(last.fileKey);
  });

  // Where the file system keeps birth times (ext4, xfs, btrfs; not tmpfs): the checkpoint keeps the file's, and a
  // file born later on the same inode is a new one, even with the same first KiB (a banner every job log starts with).
  it.skipIf(!keepsBirthTimes())(
    "a checkpoint saved for a file born before the one now on its inode starts at 0, though their first bytes match",
    async () => {
      const file = path.join(dir, "job.log");
      const cpDir = path.join(dir, "cp");
      const banner = `${"=".repeat(1100)} job runner v1 ${"=".repeat(20)}\n`;
      writeFileSync(file, banner + numbered(1, 5, "old"));
      // A birth time equal to the change time is not trusted (where statx is missing, libuv reports the change time as
      // the birth time): a file written since it was made, as a log is, has them apart.
      await waitFor(() => {
        chmodSync(file, 0o644);
        const t = statSync(file, { bigint: true });
        return t.ctimeNs !== t.birthtimeNs;
      }, { message: "the file's change time past its birth" });
      const store = () => new CheckpointStore({ dir: cpDir, source: "s", flushIntervalMs: 0 });
      const first = await tail({ paths: ["job.log"], checkpoints: store() });
      await waitFor(() => first.lines.length === 6, { message: "the banner and 5 old lines" });
      const last = first.lines.at(-1)!;
      first.tailer.commit(last.fileKey, last.end);
      await first.tailer.stop();
      // The saved file was born before this one: as if it had been deleted and a new job log had taken its inode.
      const cpFile = path.join(cpDir, "s.json");
      const saved = JSON.parse(readFileSync(cpFile, "utf8")) as { files: Array<{ born?: string; offset: number }> };
      expect(saved.files).toHaveLength(1);
      expect(saved.files[0]!.born).toBe(String(statSync(file, { bigint: true }).birthtimeNs));
      saved.files[0]!.born = "1";
      writeFileSync(cpFile, JSON.stringify(saved));
      writeFileSync(file, banner + numbered(1, 50, "new")); // same inode, same first KiB, longer than the old offset

      const second = await tail({ paths: ["job.log"], checkpoints: store() });
      await waitFor(() => second.lines.length === 51, { message: () => `the banner and 50 new lines, got ${second.lines.length}` });
      expect(second.lines[1]).toMatchObject({ text: "new 1", offset: Buffer.byteLength(banner) });
      expect(second.tailer.stats()).toMatchObject({ fingerprintMismatches: 1, resumedFromCheckpoint: 0 });
    },
  );

  it("a file truncated while the tailer was down starts at 0", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    writeFileSync(file, numbered(1, 50));
    const first = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => first.lines.length === 50, { message: "50 lines" });
    first.tailer.commit(first.lines[49]!.fileKey, first.lines[49]!.end);
    await first.tailer.stop();
    truncateSync(file, 0);
    appendFileSync(file, numbered(1, 3)); // same head, shorter than the checkpoint
    const second = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => second.lines.length === 3, { message: "3 lines from offset 0" });
    expect(second.texts()).toEqual(["line 1", "line 2", "line 3"]);
    expect(second.tailer.stats().truncations).toBe(1);
  });
});

describe("FileTailer: rotation while stopped", () => {
  /** A first run that reads app.log's 100 lines and commits them all, then stops. */
  async function firstRun(cpDir: string, file: string): Promise<TailLine> {
    writeFileSync(file, numbered(1, 100));
    const first = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => first.lines.length === 100, { message: "100 lines in the first run" });
    const last = first.lines.at(-1)!;
    first.tailer.commit(last.fileKey, last.end);
    await first.tailer.stop();
    return last;
  }

  /** While stopped: 30 more lines, then logrotate's rename to app.log.1 and a new app.log of 5; a second run reads both. */
  async function secondRunAfterRename(cpDir: string, file: string): Promise<Awaited<ReturnType<typeof tail>>> {
    appendFileSync(file, numbered(101, 130));
    renameSync(file, path.join(dir, "app.log.1"));
    writeFileSync(file, numbered(1, 5, "new"));
    const second = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => second.lines.length === 35, { message: () => `30 old and 5 new lines, got ${JSON.stringify(second.texts())}` });
    return second;
  }

  it("copytruncate while stopped, the copy matched by the paths: the copy is read from where the original was, not again from 0", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    // Longer than fingerprintBytes (1024) when it stopped: a copy is known by a whole fingerprint.
    writeFileSync(file, numbered(1, 100, "a longer line, so that 100 of them fill more than a kilobyte"));
    const first = await tail({ paths: ["app.log*"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => first.lines.length === 100, { message: "100 lines in the first run" });
    const last = first.lines.at(-1)!;
    first.tailer.commit(last.fileKey, last.end);
    await first.tailer.stop();
    appendFileSync(file, numbered(101, 130)); // unread when the copy is made
    copyFileSync(file, `${file}.1`);
    truncateSync(file, 0);
    appendFileSync(file, numbered(1, 5, "new"));
    const problems: string[] = [];
    const second = await tail({ paths: ["app.log*"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    second.tailer.on("problem", (p) => problems.push(`${p.kind} ${p.path}`));
    const opens: string[] = [];
    second.tailer.on("open", (e) => opens.push(`${path.basename(e.path)} ${e.reason} @${e.offset}`));
    await waitFor(() => second.lines.length >= 35, { message: () => `30 old and 5 new lines, got ${JSON.stringify(second.texts())}` });
    await passes(second.tailer, 5);
    expect([...second.texts()].sort()).toEqual([...numbered(101, 130).trimEnd().split("\n"), ...numbered(1, 5, "new").trimEnd().split("\n")].sort());
    expect(second.tailer.stats()).toMatchObject({ copytruncateCopies: 1, goneWhileStopped: 0 });
    expect(second.lines.find((l) => l.text === "line 101")!.offset).toBe(last.end);
    expect(problems).toEqual([]);
  });

  it("a file renamed to a name the paths do not match is found by identity and its rest read, then the new file", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    const last = await firstRun(cpDir, file);
    const second = await secondRunAfterRename(cpDir, file);
    await passes(second.tailer, 3);
    const old = second.lines.filter((l) => l.fileKey === last.fileKey);
    expect(old.map((l) => l.text)).toEqual(numbered(101, 130).trimEnd().split("\n"));
    expect(old[0]).toMatchObject({ offset: last.end, path: file }); // the name it was written under
    expect(second.lines.filter((l) => l.fileKey !== last.fileKey).map((l) => l.text)).toEqual(numbered(1, 5, "new").trimEnd().split("\n"));
    expect(second.tailer.stats()).toMatchObject({ renamedWhileStopped: 1, goneWhileStopped: 0 });
    expect(second.problems).toEqual([{ kind: "renamed-while-stopped", path: file, error: `${path.join(dir, "app.log.1")}, from byte ${last.end}` }]);
    // It is read to its end and closed as a rotated file.
    await waitFor(() => second.tailer.stats().closed === 1, { message: "the renamed file closed after rotateWaitMs" });
  });

  it("stopped again before the renamed file was read to its end (a second crash): the next run still reads its rest", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    const last = await firstRun(cpDir, file);
    const second = await secondRunAfterRename(cpDir, file);
    // Only lines up to 110 of the renamed file were delivered (and the new file's) when this run ended.
    const old = second.lines.filter((l) => l.fileKey === last.fileKey);
    second.tailer.commit(last.fileKey, old[9]!.end);
    const fresh = second.lines.filter((l) => l.fileKey !== last.fileKey);
    second.tailer.commit(fresh[0]!.fileKey, fresh.at(-1)!.end);
    await second.tailer.stop();
    const third = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    // Before, the second run saved the renamed file's entry under app.log.1, which the paths do not match: skipped.
    await waitFor(() => third.lines.length === 20, { message: () => `lines 111–130 again, got ${JSON.stringify(third.texts())}` });
    await passes(third.tailer, 3);
    expect(third.texts()).toEqual(numbered(111, 130).trimEnd().split("\n"));
    expect(third.tailer.stats()).toMatchObject({ renamedWhileStopped: 1, goneWhileStopped: 0 });
  });

  it("nothing is read from a renamed file that holds nothing new, or whose first bytes changed", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    await firstRun(cpDir, file);
    renameSync(file, path.join(dir, "app.log.1")); // fully read before the stop
    writeFileSync(file, "fresh\n");
    const second = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => second.lines.length === 1, { message: "the new file's line" });
    await passes(second.tailer, 3);
    expect(second.texts()).toEqual(["fresh"]);
    expect(second.tailer.stats()).toMatchObject({ renamedWhileStopped: 0, goneWhileStopped: 0 });
    expect(second.problems).toEqual([]);
  });

  it("a file that was in use and is gone at start (compressed, deleted) is announced once and counted", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    const last = await firstRun(cpDir, file);
    appendFileSync(file, numbered(101, 110));
    renameSync(file, path.join(dir, "app.log.1"));
    execFileSync("gzip", [path.join(dir, "app.log.1")]);
    // Longer than the fingerprint, so that a new app.log on the freed inode is told apart from a truncation.
    writeFileSync(file, numbered(1, 200, "new"));
    const second = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => second.lines.length === 200, { message: "the new file's lines" });
    await passes(second.tailer, 3);
    expect(second.tailer.stats()).toMatchObject({ renamedWhileStopped: 0, goneWhileStopped: 1 });
    // Gone from its directory, or its inode already holds the new app.log (tmpfs and ext4 reuse inode numbers).
    expect(second.problems).toEqual([{ kind: "gone-while-stopped", path: file, error: expect.stringContaining(`read up to byte ${last.end}`) }]);
  });
  it("a file gone at start that the last run had finished with long before it stopped is not announced", async () => {
    const cpDir = path.join(dir, "cp");
    writeFileSync(path.join(dir, "a.log"), numbered(1, 10, "a"));
    writeFileSync(path.join(dir, "b.log"), numbered(1, 10, "b"));
    const store = new CheckpointStore({ dir: cpDir, source: "s" });
    const first = await tail({ paths: ["*.log"], checkpoints: store });
    await waitFor(() => first.lines.length === 20, { message: "20 lines in the first run" });
    for (const l of first.lines) first.tailer.commit(l.fileKey, l.end);
    await first.tailer.stop();
    // b.log was last seen a minute before a.log: the last run was done with it well before it stopped.
    const saved = JSON.parse(readFileSync(store.file, "utf8")) as { files: Array<{ path: string; lastSeen: number }> };
    for (const f of saved.files) if (f.path.endsWith("b.log")) f.lastSeen -= 60_000;
    writeFileSync(store.file, JSON.stringify(saved));
    unlinkSync(path.join(dir, "b.log"));
    unlinkSync(path.join(dir, "a.log"));
    const second = await tail({ paths: ["*.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await passes(second.tailer, 3);
    expect(second.tailer.stats()).toMatchObject({ renamedWhileStopped: 0, goneWhileStopped: 1 });
    expect(second.problems).toEqual([
      { kind: "gone-while-stopped", path: path.join(dir, "a.log"), error: expect.stringContaining(`read up to byte ${Buffer.byteLength(numbered(1, 10, "a"))};`) },
    ]);
  });

  it("a file the paths no longer name is neither read nor announced, though it grew while stopped", async () => {
    const cpDir = path.join(dir, "cp");
    writeFileSync(path.join(dir, "a.log"), numbered(1, 10, "a"));
    writeFileSync(path.join(dir, "b.log"), numbered(1, 10, "b"));
    writeFileSync(path.join(dir, "c.log"), numbered(1, 10, "c"));
    const first = await tail({ paths: ["*.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => first.lines.length === 30, { message: "30 lines in the first run" });
    for (const l of first.lines) first.tailer.commit(l.fileKey, l.end);
    await first.tailer.stop();
    // While stopped: b.log grows and is renamed, c.log is deleted, and the user now tails a.log only.
    appendFileSync(path.join(dir, "b.log"), numbered(11, 20, "b"));
    renameSync(path.join(dir, "b.log"), path.join(dir, "b.old"));
    unlinkSync(path.join(dir, "c.log"));
    appendFileSync(path.join(dir, "a.log"), numbered(11, 13, "a"));
    const second = await tail({ paths: ["a.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => second.lines.length === 3, { message: "a.log's new lines" });
    await passes(second.tailer, 10);
    expect(second.texts()).toEqual(numbered(11, 13, "a").trimEnd().split("\n"));
    expect(second.tailer.stats()).toMatchObject({ renamedWhileStopped: 0, goneWhileStopped: 0, filesOpen: 1 });
    expect(second.problems).toEqual([]);
  });

  it("a gone file is announced once: a quick restart after it (a collector's, after a crash) does not say it again", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    await firstRun(cpDir, file);
    mkdirSync(path.join(dir, "archive"));
    renameSync(file, path.join(dir, "archive", "app.log.1")); // moved out of its directory
    writeFileSync(file, numbered(1, 200, "new"));
    const second = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => second.lines.length === 200, { message: "the new file's lines" });
    second.tailer.commit(second.lines.at(-1)!.fileKey, second.lines.at(-1)!.end);
    expect(second.tailer.stats().goneWhileStopped).toBe(1);
    expect(second.problems[0]!.error).toMatch(/is not in its directory any more/);
    await second.tailer.stop();
    const third = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await passes(third.tailer, 3);
    expect(third.tailer.stats().goneWhileStopped).toBe(0);
    expect(third.problems).toEqual([]);
  });

  it("copytruncate while stopped is announced as other content in the file, not as a file renamed or removed", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    const last = await firstRun(cpDir, file);
    copyFileSync(file, path.join(dir, "app.log.1"));
    truncateSync(file, 0);
    appendFileSync(file, numbered(1, 200, "new"));
    const second = await tail({ paths: ["app.log"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s" }) });
    await waitFor(() => second.lines.length === 200, { message: "the new lines" });
    await passes(second.tailer, 3);
    expect(second.problems).toEqual([
      { kind: "gone-while-stopped", path: file, error: expect.stringContaining(`it holds other content now, truncated and rewritten or a new file on its inode (the old content was read up to byte ${last.end})`) },
    ]);
  });
});

describe("FileTailer: checkpoint failures and idle files", () => {
  it("a checkpoint write failure is reported (ERR_CHECKPOINT) and tailing goes on; it recovers when writable", async () => {
    const blocker = path.join(dir, "blocker");
    writeFileSync(blocker, "a file where the checkpoint directory should be");
    const store = new CheckpointStore({ dir: path.join(blocker, "cp"), source: "s", flushIntervalMs: 60_000 });
    const file = path.join(dir, "app.log");
    writeFileSync(file, "one\n");
    const { tailer, lines } = await tail({ paths: ["app.log"], checkpoints: store });
    const codes: string[] = [];
    tailer.on("checkpointError", (e) => codes.push(e.code));
    await waitFor(() => lines.length === 1, { message: "the first line" });
    tailer.commit(lines[0]!.fileKey, lines[0]!.end);
    expect(await tailer.flush()).toBe(false);
    // Reported, with its code: by this explicit flush, and possibly already by the store's leading-edge write of
    // the newly registered file.
    expect(codes.length).toBeGreaterThanOrEqual(1);
    expect(codes.every((c) => c === "ERR_CHECKPOINT")).toBe(true);
    appendFileSync(file, "two\n");
    await waitFor(() => lines.length === 2, { message: "tailing continues after the failed write" });
    rmSync(blocker);
    mkdirSync(blocker);
    expect(await tailer.flush()).toBe(true);
    expect(store.entries()[0]!.offset).toBe(4);
  });

  it("closes a file idle for closeInactiveMs and reopens it where it left off when it grows", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, "one\n");
    const { tailer, lines } = await tail({ paths: ["app.log"], closeInactiveMs: 20 });
    const events: string[] = [];
    tailer.on("close", (e) => events.push(`close ${e.reason}`));
    tailer.on("open", (e) => events.push(`open ${e.reason}`));
    await waitFor(() => events.includes("close inactive"), { message: "the idle file closed" });
    expect(tailer.stats().filesOpen).toBe(0);
    appendFileSync(file, "two\n");
    await waitFor(() => lines.length === 2, { message: "the appended line after reopening" });
    expect(lines[1]).toMatchObject({ text: "two", offset: 4, fileKey: lines[0]!.fileKey });
    expect(events.slice(0, 2)).toEqual(["close inactive", "open reopen"]);
  });

  it("a file closed for inactivity and then renamed to a name the paths do not match is read to its end there", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, "one\n");
    const { tailer, texts, lines } = await tail({ paths: ["app.log"], closeInactiveMs: 50 });
    const events: string[] = [];
    tailer.on("close", (e) => events.push(`close ${e.reason}`));
    await waitFor(() => events.includes("close inactive"), { message: "the idle file closed" });
    // logrotate's `create`: the writer appends, the file is renamed and a new one made, and the writer, not having
    // reopened yet, still appends to the old one.
    appendFileSync(file, "two\n");
    renameSync(file, `${file}.1`);
    writeFileSync(file, "new\n");
    appendFileSync(`${file}.1`, "three\n");
    await waitFor(() => texts().includes("three") && texts().includes("new"), { message: () => `the rest of the renamed file and the new one, got ${JSON.stringify(texts())}` });
    await waitFor(() => events.includes("close rotated"), { message: "the renamed file closed after rotateWaitMs" });
    expect(texts().filter((t) => t !== "new")).toEqual(["one", "two", "three"]);
    const old = lines.filter((l) => l.text !== "new");
    expect(old.map((l) => [l.offset, l.fileKey])).toEqual([[0, old[0]!.fileKey], [4, old[0]!.fileKey], [8, old[0]!.fileKey]]);
    expect(tailer.stats().rotations).toBe(1);
  });
});

describe("FileTailer: flow control", () => {
  it("pause() stops reading (the offset stays put for many passes); resume() delivers everything", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 10));
    const { tailer, lines } = await tail({ paths: ["app.log"] });
    await waitFor(() => lines.length === 10, { message: "10 lines before pausing" });
    tailer.pause();
    const before = tailer.files()[0]!.position;
    await appendFile(file, numbered(11, 5000));
    await passes(tailer, 20);
    expect(tailer.files()[0]!.position).toBe(before);
    expect(lines).toHaveLength(10);
    tailer.resume();
    await waitFor(() => lines.length === 5000, { message: () => `5000 lines after resume, got ${lines.length}` });
    expect(lines.map((l) => l.text)).toEqual(numbered(1, 5000).trimEnd().split("\n"));
  });

  it("credit: reading stops when the line credit is spent (overshoot ≤ one chunk) and grant() continues", async () => {
    const file = path.join(dir, "app.log");
    const chunk = 4096;
    writeFileSync(file, numbered(1, 20_000));
    const { tailer, lines } = await tail({ paths: ["app.log"], credit: { lines: 100, bytes: Infinity }, readChunkBytes: chunk });
    await waitFor(() => lines.length >= 100, { message: "the first 100 lines" });
    await passes(tailer, 10);
    const maxLinesPerChunk = Math.ceil(chunk / "line 1\n".length);
    expect(lines.length).toBeLessThanOrEqual(100 + maxLinesPerChunk);
    expect(tailer.files()[0]!.position).toBeLessThanOrEqual(Buffer.byteLength(numbered(1, 100)) + chunk);
    const stalled = lines.length;
    await passes(tailer, 5);
    expect(lines.length).toBe(stalled);
    tailer.grant(1_000_000, Infinity);
    await waitFor(() => lines.length === 20_000, { message: () => `20000 lines after grant, got ${lines.length}` });
  });

  it("reads ahead through a file of many chunks: every line once, in order, with exact offsets", async () => {
    const file = path.join(dir, "app.log");
    const content = numbered(1, 30_000);
    writeFileSync(file, content);
    const { lines } = await tail({ paths: ["app.log"], readChunkBytes: 1000 });
    await waitFor(() => lines.length === 30_000, { message: () => `30000 lines, got ${lines.length}` });
    expect(lines.map((l) => l.text)).toEqual(content.trimEnd().split("\n"));
    let at = 0;
    for (const l of lines) {
      expect(l.offset).toBe(at);
      at = l.end;
    }
    expect(at).toBe(Buffer.byteLength(content));
  });

  it("a chunk read ahead is dropped when the file was truncated meanwhile: no stale line after the new content starts", async () => {
    const file = path.join(dir, "app.log");
    const chunk = 4096;
    writeFileSync(file, numbered(1, 5_000));
    // Credit for 100 lines: the first chunk (about 500 lines) spends it; the second was read ahead by then.
    const { tailer, lines } = await tail({ paths: ["app.log"], credit: { lines: 100, bytes: Infinity }, readChunkBytes: chunk });
    await waitFor(() => lines.length >= 100, { message: "the first chunk" });
    await passes(tailer, 3);
    const before = lines.length;
    expect(before).toBeLessThan(5_000);
    // copytruncate: the file now holds less than was read, so the tailer starts it again at 0.
    writeFileSync(file, numbered(1, 50, "new"));
    await waitFor(() => tailer.stats().truncations === 1, { message: "the truncation seen" });
    tailer.grant(1_000_000, Infinity);
    await waitFor(() => lines.length === before + 50, { message: () => `${before + 50} lines, got ${lines.length}` });
    expect(lines.slice(0, before).map((l) => l.text)).toEqual(numbered(1, before).trimEnd().split("\n"));
    expect(lines.slice(before).map((l) => l.text)).toEqual(numbered(1, 50, "new").trimEnd().split("\n"));
  });

  it("a handler that returns a promise holds further reads until it settles", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 3000));
    const lines: TailLine[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const { tailer } = await tail({ paths: ["app.log"], readChunkBytes: 1024 }, (batch) => {
      lines.push(...batch);
      calls++;
      return calls === 1 ? gate : undefined;
    });
    await waitFor(() => calls === 1, { message: "the first batch" });
    await passes(tailer, 0);
    const held = lines.length;
    expect(held).toBeLessThan(3000);
    release();
    await waitFor(() => lines.length === 3000, { message: "all lines after the handler settled" });
    expect(calls).toBeGreaterThan(1);
  });
});

describe("FileTailer: rotation, truncation, deletion", () => {
  it("rename rotation: reads the old file to EOF (also what is written after the rename), then the new one", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 100));
    const { tailer, lines, texts } = await tail({ paths: ["app.log"], rotateWaitMs: 60_000 });
    const events: string[] = [];
    tailer.on("rotate", () => events.push("rotate"));
    await waitFor(() => lines.length === 100, { message: "100 lines" });
    renameSync(file, `${file}.1`);
    await waitFor(() => events.length === 1, { message: "the rotate event" });
    appendFileSync(`${file}.1`, numbered(101, 120)); // a writer that has not reopened yet
    writeFileSync(file, numbered(121, 130));
    await waitFor(() => lines.length === 130, { message: () => `130 lines, got ${lines.length}` });
    expect([...texts()].sort()).toEqual(numbered(1, 130).trimEnd().split("\n").sort());
    const keys = new Set(lines.map((l) => l.fileKey));
    expect(keys.size).toBe(2);
    expect(tailer.stats().rotations).toBe(1);
  });

  it("rotated files matched by the glob (app.log*) are not read twice, and close after rotateWaitMs", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 100));
    const { tailer, lines } = await tail({ paths: ["app.log*"], rotateWaitMs: 20 });
    await waitFor(() => lines.length === 100, { message: "100 lines" });
    renameSync(file, `${file}.1`);
    writeFileSync(file, numbered(101, 110));
    await waitFor(() => lines.length === 110, { message: "the new file's 10 lines" });
    renameSync(`${file}.1`, `${file}.2`);
    renameSync(file, `${file}.1`);
    writeFileSync(file, numbered(111, 115));
    await waitFor(() => lines.length === 115, { message: "the third file's lines" });
    const scans = tailer.stats().scans;
    await waitFor(() => tailer.stats().scans >= scans + 3, { message: "3 more rescans" });
    expect(lines).toHaveLength(115);
    expect(new Set(lines.map((l) => l.text)).size).toBe(115);
  });

  it("copytruncate (size shrinks below the offset) restarts at 0, counted", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 50));
    const { tailer, lines } = await tail({ paths: ["app.log"] });
    const truncates: number[] = [];
    tailer.on("truncate", (e) => truncates.push(e.previousOffset));
    await waitFor(() => lines.length === 50, { message: "50 lines" });
    truncateSync(file, 0);
    await waitFor(() => truncates.length === 1, { message: "the truncate event" });
    appendFileSync(file, "after truncate\n");
    await waitFor(() => lines.length === 51, { message: "the line written after the truncate" });
    expect(lines[50]).toMatchObject({ text: "after truncate", offset: 0 });
    expect(lines[50]!.fileKey).not.toBe(lines[0]!.fileKey);
    expect(truncates).toEqual([Buffer.byteLength(numbered(1, 50))]);
    expect(tailer.stats().truncations).toBe(1);
  });

  it("a truncation that takes away an unfinished last line counts it and says how many bytes went", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, "line 1\npartial, no newline yet");
    const { tailer, lines } = await tail({ paths: ["app.log"], partialLineTimeoutMs: 60_000 });
    const truncates: number[] = [];
    tailer.on("truncate", (e) => truncates.push(e.discardedBytes));
    await waitFor(() => lines.length === 1, { message: "the first line" });
    truncateSync(file, 0);
    await waitFor(() => truncates.length === 1, { message: "the truncate event" });
    appendFileSync(file, "after\n");
    await waitFor(() => lines.length === 2, { message: "the line written after the truncate" });
    expect(lines.map((l) => l.text)).toEqual(["line 1", "after"]);
    expect(truncates).toEqual([Buffer.byteLength("partial, no newline yet")]);
    expect(tailer.stats()).toMatchObject({ truncations: 1, partialLinesDiscarded: 1, partialBytesDiscarded: 23 });
  });

  it("truncate and refill past the old offset before a poll is caught by the changed first bytes", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 200, "old"));
    const { tailer, lines } = await tail({ paths: ["app.log"] });
    await waitFor(() => lines.length === 200, { message: "200 lines" });
    tailer.pause();
    writeFileSync(file, numbered(1, 400, "new")); // O_TRUNC then a longer write: size never looks smaller
    tailer.resume();
    await waitFor(() => lines.length === 600, { message: () => `400 new lines, got ${lines.length - 200}` });
    expect(lines[200]).toMatchObject({ text: "new 1", offset: 0 });
    expect(tailer.stats().truncations).toBe(1);
  });

  it.each([
    { label: "empty", copied: 0 },
    { label: "shorter than fingerprintBytes", copied: 100 },
  ])("a copytruncate copy found while still being written ($label) is recognized once filled: nothing read twice", async ({ copied }) => {
    const file = path.join(dir, "app.log");
    const copy = `${file}.1`;
    writeFileSync(file, numbered(1, 200)); // longer than fingerprintBytes (1024): copies are recognizable
    const content = readFileSync(file);
    const { tailer, lines, texts } = await tail({ paths: ["app.log*"] });
    const opens: string[] = [];
    tailer.on("open", (e) => opens.push(`${path.basename(e.path)} ${e.reason} @${e.offset}`));
    await waitFor(() => lines.length === 200, { message: "200 lines" });
    // The copier has created the copy and written little or nothing yet; two scan starts: one began after that.
    writeFileSync(copy, content.subarray(0, copied));
    const scans = tailer.stats().scans;
    await waitFor(() => tailer.stats().scans >= scans + 2, { message: "2 rescans that see the unfinished copy" });
    appendFileSync(copy, content.subarray(copied));
    truncateSync(file, 0);
    appendFileSync(file, numbered(201, 210));
    await waitFor(() => lines.length >= 210 && tailer.stats().copytruncateCopies === 1, {
      message: () => `210 lines and the copy recognized, got ${lines.length} lines, opens ${JSON.stringify(opens)}`,
    });
    await passes(tailer, 5);
    expect(texts()).toEqual(numbered(1, 210).trimEnd().split("\n"));
    expect(opens).toEqual([`app.log.1 copytruncate-copy @${Buffer.byteLength(numbered(1, 200))}`]);
  });

  // The tailer saw the file grow (it polls while paused) but had not read the growth when it was truncated.
  it.each([
    { label: "no copy under the paths (after copyDecisionMs)", paths: ["app.log"], copyUpTo: undefined, fingerprintBytes: 1024 },
    { label: "too short for a fingerprint to know a copy by (at once)", paths: ["app.log"], copyUpTo: undefined, fingerprintBytes: 65_536 },
    { label: "a copy that ends before them (written between the copy and the truncate)", paths: ["app.log*"], copyUpTo: 220, fingerprintBytes: 1024 },
  ])("bytes a truncation took away unread are counted and announced as lost: $label", async ({ paths, copyUpTo, fingerprintBytes }) => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 200));
    const { tailer, texts } = await tail({ paths, fingerprintBytes, copyDecisionMs: 300 });
    const lost: { path: string; bytes: number }[] = [];
    tailer.on("truncatedUnread", (e) => lost.push(e));
    await waitFor(() => texts().length === 200, { message: "200 lines" });
    tailer.pause();
    appendFileSync(file, numbered(201, 250));
    await passes(tailer, 3); // its polls saw the new size
    if (copyUpTo !== undefined) writeFileSync(`${file}.1`, numbered(1, copyUpTo));
    truncateSync(file, 0);
    tailer.resume();
    const from = copyUpTo ?? 200;
    await waitFor(() => lost.length > 0, { message: "the lost bytes announced" });
    expect(lost).toEqual([{ path: file, bytes: Buffer.byteLength(numbered(from + 1, 250)) }]);
    expect(tailer.stats().truncatedUnreadBytes).toBe(Buffer.byteLength(numbered(from + 1, 250)));
    await passes(tailer, 5);
    expect(texts()).toEqual(numbered(1, from).trimEnd().split("\n"));
    expect(lost).toHaveLength(1);
  });

  it("a copytruncate copy that holds everything unread: nothing counted as lost", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 200));
    const { tailer, texts } = await tail({ paths: ["app.log*"], copyDecisionMs: 300 });
    await waitFor(() => texts().length === 200, { message: "200 lines" });
    tailer.pause();
    appendFileSync(file, numbered(201, 250));
    await passes(tailer, 3);
    writeFileSync(`${file}.1`, numbered(1, 250));
    truncateSync(file, 0);
    tailer.resume();
    await waitFor(() => texts().length === 250, { message: () => `250 lines, got ${texts().length}` });
    await new Promise((resolve) => setTimeout(resolve, 400)); // past copyDecisionMs: a sweep would have counted it
    await passes(tailer, 3);
    expect(tailer.stats()).toMatchObject({ truncations: 1, copytruncateCopies: 1, truncatedUnreadBytes: 0 });
  });

  it("a copytruncate copy's checkpoint starts at what its original had settled, and moves as the rest settles", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    writeFileSync(file, numbered(1, 200));
    const store = () => new CheckpointStore({ dir: cpDir, source: "s", flushIntervalMs: 0 });
    const saved = () => JSON.parse(readFileSync(path.join(cpDir, "s.json"), "utf8")).files as { path: string; offset: number }[];
    const first = await tail({ paths: ["app.log*"], checkpoints: store() });
    await waitFor(() => first.lines.length === 200, { message: "200 lines" });
    const at = (n: number) => first.lines[n - 1]!;
    first.tailer.commit(at(50).fileKey, at(50).end); // the sinks settled lines 1 to 50 only
    copyFileSync(file, `${file}.1`);
    truncateSync(file, 0);
    await waitFor(() => first.tailer.stats().copytruncateCopies === 1, { message: "the copy recognized" });
    // Lines 1 to 200 were read from the original: the copy holds nothing new, and its checkpoint is line 50's end.
    await passes(first.tailer, 3);
    expect(first.lines).toHaveLength(200);
    await first.tailer.flush();
    expect(saved().find((e) => e.path === `${file}.1`)?.offset).toBe(at(50).end);
    // Lines settled after the copy was found move its checkpoint: they came from the original, under its key.
    first.tailer.commit(at(120).fileKey, at(120).end);
    await first.tailer.flush();
    expect(saved().find((e) => e.path === `${file}.1`)?.offset).toBe(at(120).end);
    await first.tailer.stop(); // a crash now: lines 121 to 200 were read but never settled
    const second = await tail({ paths: ["app.log*"], checkpoints: store() });
    await waitFor(() => second.lines.length === 80, { message: () => `lines 121 to 200 again, got ${second.lines.length}` });
    await passes(second.tailer, 5);
    expect(second.texts()).toEqual(numbered(121, 200).trimEnd().split("\n"));
  });

  it("lines settled after the truncation and before the copy appears count for the copy's checkpoint", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    writeFileSync(file, numbered(1, 200));
    const tailed = await tail({ paths: ["app.log*"], checkpoints: new CheckpointStore({ dir: cpDir, source: "s", flushIntervalMs: 0 }) });
    await waitFor(() => tailed.lines.length === 200, { message: "200 lines" });
    const at = (n: number) => tailed.lines[n - 1]!;
    tailed.tailer.commit(at(50).fileKey, at(50).end);
    truncateSync(file, 0);
    await waitFor(() => tailed.tailer.stats().truncations === 1, { message: "the truncation seen" });
    tailed.tailer.commit(at(150).fileKey, at(150).end); // its file now holds other content; the copy is not there yet
    writeFileSync(`${file}.1`, numbered(1, 200)); // the copy, made by hand after the truncate
    await waitFor(() => tailed.tailer.stats().copytruncateCopies === 1, { message: "the copy recognized" });
    await tailed.tailer.flush();
    const saved = JSON.parse(readFileSync(path.join(cpDir, "s.json"), "utf8")).files as { path: string; offset: number }[];
    expect(saved.find((e) => e.path === `${file}.1`)?.offset).toBe(at(150).end);
    expect(tailed.lines).toHaveLength(200);
  });

  it("a file truncated and written again before a poll gets the new content's fingerprint at once: a restart resumes", async () => {
    const file = path.join(dir, "app.log");
    const cpDir = path.join(dir, "cp");
    writeFileSync(file, numbered(1, 50, "old"));
    const store = () => new CheckpointStore({ dir: cpDir, source: "s", flushIntervalMs: 0 });
    const first = await tail({ paths: ["app.log"], checkpoints: store() });
    await waitFor(() => first.lines.length === 50, { message: "50 lines" });
    first.tailer.pause();
    writeFileSync(file, numbered(1, 3, "new")); // truncated and refilled, shorter than what was read, between polls
    await passes(first.tailer, 3);
    first.tailer.resume();
    await waitFor(() => first.lines.length === 53, { message: "the 3 new lines" });
    const last = first.lines.at(-1)!;
    first.tailer.commit(last.fileKey, last.end);
    await passes(first.tailer, 3); // the file does not change again
    await first.tailer.stop();
    const second = await tail({ paths: ["app.log"], checkpoints: store() });
    await passes(second.tailer, 10);
    expect(second.texts()).toEqual([]);
    expect(second.tailer.stats()).toMatchObject({ resumedFromCheckpoint: 1, fingerprintMismatches: 0 });
  });

  it("a new file with the same first kilobyte (a CSV header) but other lines is read at once, not held as a possible copy", async () => {
    const header = `${"col,".repeat(300)}end\n`; // 1,204 bytes: past fingerprintBytes
    const rows = (tag: string) => Array.from({ length: 50 }, (_, i) => `${tag},${i}`).join("\n") + "\n";
    writeFileSync(path.join(dir, "a.csv"), header + rows("a"));
    // copyDecisionMs as by default: a file held as a possible copy would not be read within this test's waits.
    const { tailer, texts } = await tail({ paths: ["*.csv"], copyDecisionMs: 30_000 });
    await waitFor(() => texts().length === 51, { message: "a.csv read" });
    writeFileSync(path.join(dir, "b.csv"), header + rows("b"));
    await waitFor(() => texts().length === 102, { message: () => `b.csv read at once, got ${texts().length - 51} of its 51 lines` });
    expect(texts().slice(51)).toEqual((header + rows("b")).trimEnd().split("\n"));
    // A true copy (the same bytes) is still held for its original's truncation.
    writeFileSync(path.join(dir, "c.csv"), header + rows("a"));
    await passes(tailer, 10);
    expect(texts()).toHaveLength(102);
  });

  it("deleted while open: read to EOF, delete event, closed, checkpoint entry dropped", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, numbered(1, 20));
    const store = new CheckpointStore({ dir: path.join(dir, "cp"), source: "s" });
    const { tailer, lines } = await tail({ paths: ["app.log"], checkpoints: store, rotateWaitMs: 10 });
    const closes: string[] = [];
    tailer.on("close", (e) => closes.push(e.reason));
    await waitFor(() => lines.length === 20, { message: "20 lines" });
    tailer.pause();
    appendFileSync(file, numbered(21, 30));
    unlinkSync(file);
    tailer.resume();
    await waitFor(() => closes.includes("deleted"), { message: "the file closed as deleted" });
    expect(lines).toHaveLength(30);
    expect(tailer.stats()).toMatchObject({ deletions: 1, filesOpen: 0 });
    expect(store.entries()).toEqual([]);
  });
});

describe("FileTailer: idle files", () => {
  it("polls files that stay unchanged less and less often, and still reads one that grows (named by a watch event, or at its next poll)", async () => {
    for (let i = 0; i < 40; i++) writeFileSync(path.join(dir, `idle-${i}.log`), `line ${i}\n`);
    for (const watch of [true, false]) {
      const { tailer, texts } = await tail({ paths: ["idle-*.log"], pollIntervalMs: 10, watch });
      await waitFor(() => texts().length === 40, { message: () => `40 lines, got ${texts().length}` });
      // 100 passes: 40 files polled at every pass would be 4,000 polls; backed off, far fewer.
      const before = tailer.stats();
      await passes(tailer, 100);
      const after = tailer.stats();
      expect(after.filePolls - before.filePolls, `polls in 100 passes (watch ${watch})`).toBeLessThan(40 * 100 * 0.5);
      appendFileSync(path.join(dir, "idle-7.log"), "and more\n");
      await waitFor(() => texts().includes("and more"), { timeout: 10_000, message: () => `the appended line read (watch ${watch})` });
      await tailer.stop();
      tailers.splice(tailers.indexOf(tailer), 1);
      rmSync(path.join(dir, "idle-7.log"));
      writeFileSync(path.join(dir, "idle-7.log"), "line 7\n");
    }
  });
});

describe("FileTailer: new files that begin like one it knows", () => {
  const banner = `${"#".repeat(1100)} job runner v1\n`;

  it("is read at once when it differs further on from a look-alike that is closed (idle), not held as a possible copy", async () => {
    writeFileSync(path.join(dir, "job-1.log"), banner + numbered(1, 3, "first job"));
    const opens: string[] = [];
    const { tailer, texts } = await tail({ paths: ["job-*.log"], closeInactiveMs: 50, copyDecisionMs: 600_000 });
    tailer.on("open", (e) => opens.push(`${path.basename(e.path)} ${e.reason}`));
    await waitFor(() => texts().length === 4, { message: () => `job 1 read, got ${JSON.stringify(texts())}` });
    await waitFor(() => tailer.stats().filesOpen === 0, { message: "job 1 closed as idle" });
    writeFileSync(path.join(dir, "job-2.log"), banner + numbered(1, 3, "second job"));
    await waitFor(() => texts().length === 8, { timeout: 10_000, message: () => `job 2 read without waiting copyDecisionMs, got ${JSON.stringify(texts().slice(4))}` });
    expect(texts().slice(5)).toEqual(["second job 1", "second job 2", "second job 3"]);
    expect(opens).toEqual(["job-2.log new-file"]);
  });

  it("one held as a possible copy (the same bytes as an open file) and deleted before that was decided is counted and said", async () => {
    const original = banner + numbered(1, 3, "line");
    writeFileSync(path.join(dir, "app.log"), original);
    const { tailer, texts, problems } = await tail({ paths: ["*.log"], copyDecisionMs: 600_000 });
    await waitFor(() => texts().length === 4, { message: "app.log read" });
    // The same bytes so far: maybe a copytruncate copy of app.log, held until app.log is truncated or time is up.
    const copy = path.join(dir, "app-copy.log");
    writeFileSync(copy, original);
    await waitFor(() => tailer.stats().cycles >= 5, { message: "a few passes" });
    await passes(tailer, 3);
    expect(texts()).toHaveLength(4);
    unlinkSync(copy);
    await waitFor(() => tailer.stats().heldFilesGone === 1, { message: () => `heldFilesGone 1, got ${tailer.stats().heldFilesGone}` });
    expect(problems.filter((p) => p.kind === "held-gone").map((p) => p.path)).toEqual([copy]);
  });
});

describe("FileTailer: hostile input", () => {
  it("skips a directory, a FIFO and a symlink loop matched by the glob, counted once, and keeps tailing", async () => {
    mkdirSync(path.join(dir, "dir.log"));
    execFileSync("mkfifo", [path.join(dir, "fifo.log")]);
    symlinkSync("loop.log", path.join(dir, "loop.log")); // a link to itself: ELOOP on stat
    writeFileSync(path.join(dir, "ok.log"), "fine\n");
    const { tailer, lines, problems } = await tail({ paths: ["*.log"] });
    await waitFor(() => lines.length === 1, { message: "the regular file's line" });
    await waitFor(() => tailer.stats().scans >= 4, { message: "a few rescans" });
    expect(tailer.stats()).toMatchObject({ notRegularSkipped: 2, symlinkLoops: 1 });
    expect(problems.map((p) => `${p.kind} ${path.basename(p.path!)}`).sort()).toEqual([
      "not-regular dir.log",
      "not-regular fifo.log",
      "symlink-loop loop.log",
    ]);
    appendFileSync(path.join(dir, "ok.log"), "still tailing\n");
    await waitFor(() => lines.length === 2, { message: "tailing goes on" });
  });

  it("a directory symlink loop under ** is reported, not followed forever", async () => {
    mkdirSync(path.join(dir, "a"));
    symlinkSync("..", path.join(dir, "a", "up")); // a/up/a/up/... forever
    writeFileSync(path.join(dir, "a", "x.log"), "x\n");
    const { tailer, lines } = await tail({ paths: ["**/*.log"] });
    await waitFor(() => lines.length === 1, { message: "x.log" });
    await passes(tailer, 3);
    expect(lines).toHaveLength(1); // found via a/x.log, and not again via a/up/a/x.log (same identity)
    expect(tailer.stats().symlinkLoops).toBeGreaterThanOrEqual(1);
  });

  it("a tracked path that becomes a directory: the old file is closed, the directory counted, no crash", async () => {
    const file = path.join(dir, "app.log");
    writeFileSync(file, "one\n");
    const { tailer, lines } = await tail({ paths: ["app.log", "other.log"], rotateWaitMs: 10 });
    await waitFor(() => lines.length === 1, { message: "one line" });
    unlinkSync(file);
    mkdirSync(file);
    await waitFor(() => tailer.stats().notRegularSkipped === 1 && tailer.stats().filesOpen === 0, {
      message: () => `the directory counted and the old file closed, stats ${JSON.stringify(tailer.stats())}`,
    });
    writeFileSync(path.join(dir, "other.log"), "two\n");
    await waitFor(() => lines.length === 2, { message: "another file still tailed" });
  });

  it("EACCES on a matched file is reported and counted (skipped when running as root)", async (ctx) => {
    if (process.getuid?.() === 0) ctx.skip(); // root ignores file modes: EACCES cannot be produced by chmod
    const file = path.join(dir, "secret.log");
    writeFileSync(file, "hidden\n");
    chmodSync(file, 0o000);
    const { tailer, problems } = await tail({ paths: ["*.log"] });
    await waitFor(() => problems.some((p) => p.kind === "access-denied"), { message: "an access-denied problem" });
    await passes(tailer, 5);
    expect(tailer.stats().accessDenied).toBe(1);
  });

  it("a 10 MB line without newline keeps memory bounded; the newline yields one truncated line", async () => {
    const file = path.join(dir, "big.log");
    writeFileSync(file, "");
    const maxLineBytes = 64 * 1024;
    const readChunkBytes = 64 * 1024;
    const { tailer, lines } = await tail({
      paths: ["big.log"],
      maxLineBytes,
      readChunkBytes,
      overlong: "truncate",
      partialLineTimeoutMs: false,
    });
    let maxHeld = 0;
    const piece = Buffer.alloc(1024 * 1024, "é"); // 2-byte characters: the cut must not split one
    for (let i = 0; i < 10; i++) {
      await appendFile(file, piece);
      await waitFor(
        () => {
          const f = tailer.files()[0]!;
          maxHeld = Math.max(maxHeld, f.heldBytes);
          return f.position === (i + 1) * piece.length;
        },
        { message: `the tailer consumed ${i + 1} MB` },
      );
    }
    expect(maxHeld).toBeLessThanOrEqual(maxLineBytes + readChunkBytes);
    expect(lines).toHaveLength(0);
    await appendFile(file, "\nnext\n");
    await waitFor(() => lines.length === 2, { message: "the truncated line and the next one" });
    expect(lines[0]!.truncated).toBe(true);
    expect(Buffer.byteLength(lines[0]!.text)).toBeLessThanOrEqual(maxLineBytes);
    expect(Buffer.byteLength(lines[0]!.text)).toBeGreaterThan(maxLineBytes - 4);
    expect(lines[0]!.text).not.toContain("\uFFFD");
    expect(lines[0]!.end).toBe(10 * piece.length + 1);
    expect(lines[1]).toMatchObject({ text: "next", offset: 10 * piece.length + 1 });
    expect(tailer.stats().linesTruncated).toBe(1);
  });

  it("overlong split (the default) emits maxLineBytes pieces with exact offsets, nothing lost", async () => {
    const file = path.join(dir, "long.log");
    writeFileSync(file, `${"a".repeat(40)}\nshort\n`);
    const { tailer, lines } = await tail({ paths: ["long.log"], maxLineBytes: 16 });
    await waitFor(() => lines.length === 4, { message: "3 pieces and the short line" });
    expect(lines.map((l) => [l.text.length, l.offset, l.end, l.split ?? false])).toEqual([
      [16, 0, 16, true],
      [16, 16, 32, true],
      [8, 32, 41, false],
      [5, 41, 47, false],
    ]);
    expect(tailer.stats().linesSplit).toBe(2);
  });

  it("invalid UTF-8 is replaced and counted; a genuine U+FFFD is not counted", async () => {
    const file = path.join(dir, "bin.log");
    writeFileSync(file, Buffer.concat([Buffer.from([0x61, 0xff, 0xfe, 0x62, 0x0a]), Buffer.from("ok \uFFFD\n")]));
    const { tailer, lines } = await tail({ paths: ["bin.log"] });
    await waitFor(() => lines.length === 2, { message: "2 lines" });
    expect(lines[0]).toMatchObject({ text: "a\uFFFD\uFFFDb", invalidUtf8: true });
    expect(lines[1]!.invalidUtf8).toBeUndefined();
    expect(tailer.stats().invalidUtf8Lines).toBe(1);
  });

  it("a partial last line is emitted after partialLineTimeoutMs; the rest becomes the next line", async () => {
    const file = path.join(dir, "p.log");
    writeFileSync(file, "complete\nhalf");
    const { lines } = await tail({ paths: ["p.log"], partialLineTimeoutMs: 30 });
    await waitFor(() => lines.length === 2, { message: "the complete line and the partial one" });
    expect(lines[1]).toMatchObject({ text: "half", partial: true, offset: 9, end: 13 });
    appendFileSync(file, " two\n");
    await waitFor(() => lines.length === 3, { message: "the continuation" });
    expect(lines[2]).toMatchObject({ text: " two", offset: 13, end: 18 });
  });

  it("rejects invalid options synchronously with what was expected and what arrived", () => {
    expect(() => new FileTailer({ paths: [] }, () => undefined)).toThrow(/Expected `paths` to be a non-empty array of glob strings, got an array/);
    expect(() => new FileTailer({ paths: ["x"], pollIntervalMs: -1 }, () => undefined)).toThrow(
      "Expected `pollIntervalMs` to be an integer between 1 and 60000, got `-1` (number)",
    );
    expect(() => new FileTailer({ paths: ["x"], startAt: "middle" as never }, () => undefined)).toThrow(/startAt/);
    expect(() => new FileTailer({ paths: ["x"] }, "not a function" as never)).toThrow(InvalidOptionError);
    expect(() => new FileTailer({ paths: ["x"] }, () => undefined).grant(-1, 0)).toThrow(InvalidOptionError);
  });

  it("start() twice is a StateError (ERR_INVALID_STATE)", async () => {
    const { tailer } = await tail({ paths: ["app.log"] });
    await expect(tailer.start()).rejects.toThrow(StateError);
    await expect(tailer.start()).rejects.toMatchObject({ code: "ERR_INVALID_STATE", message: "FileTailer.start() called while running" });
  });
});

