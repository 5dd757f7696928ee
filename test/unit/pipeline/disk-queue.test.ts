// DiskQueue (a sink lane's disk queue) against real files in a fresh temp directory: the round trip in order, segment
// rotation and deletion of settled segments, restart from `position`, takeover of a stale lock after a crash, the
// directory lock, damaged segments (a flipped byte, a torn tail, a wrong header) and the `maxBytes` bound.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AggregatorError } from "../../../src/errors.js";
import { Entry, type AckTarget } from "../../../src/pipeline/entry.js";
import { SEGMENT_MAGIC, DiskQueue, inspectDiskQueue, type ResolvedDiskQueue, type DiskQueueHooks } from "../../../src/pipeline/disk-queue.js";
import { waitFor } from "../../helpers/wait-for.js";
import { startTime } from "../../helpers/alive.js";

const SINK = "es";
/** The code of the error open() throws when the directory is locked (DiskQueueError's code). */
const LOCKED_CODE = "ERR_DISK_QUEUE";

/** This process's start time: a lock names its holder by pid and start time. */
const SELF_START = startTime(process.pid);
/** What `lock` holds while this process uses the directory. */
const OUR_LOCK = `${process.pid} ${SELF_START}`;

/** The error class the queue reports with (named through the hooks, so this file does not depend on its name). */
type QueueError = Parameters<DiskQueueHooks["error"]>[0];
const HEADER = SEGMENT_MAGIC.length;

const dirs: string[] = [];
const queues: DiskQueue[] = [];

afterEach(async () => {
  for (const s of queues.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), "cla-dq-"));
  dirs.push(d);
  return d;
}

/** Hooks that record what they hear; `persistedAll(n)` resolves once `n` records were reported on disk. */
class Hooks implements DiskQueueHooks {
  persistedCount = 0;
  readonly notPersistedCalls: { entries: readonly Entry[]; error: QueueError }[] = [];
  readonly corruptCalls: { records: number; detail: string; recovered: boolean }[] = [];
  readonly errors: QueueError[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];

  persisted(entries: readonly Entry[]): void {
    this.persistedCount += entries.length;
    this.waiters = this.waiters.filter((w) => (w.n <= this.persistedCount ? (w.resolve(), false) : true));
  }
  notPersisted(entries: readonly Entry[], error: QueueError): void {
    this.notPersistedCalls.push({ entries, error });
  }
  corrupt(records: number, detail: string, recovered: boolean): void {
    this.corruptCalls.push({ records, detail, recovered });
  }
  readable(): void {}
  roomAgain(): void {}
  error(error: QueueError): void {
    this.errors.push(error);
  }

  persistedAll(n: number): Promise<void> {
    if (this.persistedCount >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

function openQueue(dir: string, hooks: Hooks, options: Partial<ResolvedDiskQueue> = {}): DiskQueue {
  const s = new DiskQueue(SINK, { dir, maxBytes: 64 * 1024 * 1024, segmentBytes: 4096, fsync: true, ...options }, hooks);
  s.open();
  queues.push(s);
  return s;
}

/** Close a queue the test is done with (afterEach then leaves it alone). */
async function closeQueue(s: DiskQueue): Promise<void> {
  queues.splice(queues.indexOf(s), 1);
  await s.close();
}

/** The source an original record came from (the queue never settles these: `persisted` is the lane's signal). */
const source = (name: string): AckTarget => ({ name, settle: () => {} });
const SOURCES = [source("app-a"), source("worker-b")];

/** Record i: distinct JSON (some non-ASCII, so bytes ≠ characters), alternating between two sources. */
function record(i: number, pad = 60): Entry {
  const json = JSON.stringify({ i, msg: `record ${i} ünïcödé ${"x".repeat(pad + (i % 7))}` });
  const e = new Entry(json, Buffer.byteLength(json), SOURCES[i % 2], i);
  e.pending = 1;
  return e;
}

/** Append records [from, to) in batches of `batch`, waiting for each batch to be on disk (one flush per batch). */
async function appendRecords(s: DiskQueue, hooks: Hooks, from: number, to: number, batch = to - from): Promise<Entry[]> {
  const out: Entry[] = [];
  for (let i = from; i < to; i += batch) {
    for (let k = i; k < Math.min(to, i + batch); k++) {
      const e = record(k);
      out.push(e);
      s.append(e);
    }
    await hooks.persistedAll(hooks.persistedCount + Math.min(batch, to - i));
  }
  return out;
}

interface ReadBack {
  entries: Entry[];
  /** Sum of the `recovered` of every read. */
  recovered: number;
}

/** Read until nothing is readable, `chunk` records per read; settles each chunk right away when `settle`. */
async function readAll(s: DiskQueue, chunk: number, settle = false): Promise<ReadBack> {
  const out: ReadBack = { entries: [], recovered: 0 };
  for (let reads = 0; s.readable; reads++) {
    expect(reads, "reads of a finite queue").toBeLessThan(10_000);
    const r = await s.read(chunk, 1024 * 1024);
    expect(r.entries.length).toBeLessThanOrEqual(chunk);
    out.entries.push(...r.entries);
    out.recovered += r.recovered;
    if (settle) settleAll(r.entries);
  }
  return out;
}

function settleAll(entries: readonly Entry[]): void {
  for (const e of entries) {
    e.pending = 1;
    e.settleOne(true);
  }
}

const texts = (entries: readonly Entry[]): string[] => entries.map((e) => e.json);
const names = (entries: readonly Entry[]): (string | undefined)[] => entries.map((e) => e.source?.name);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);
const jsonOf = (ids: readonly number[]): string[] => ids.map((i) => record(i).json);
const nameOf = (ids: readonly number[]): string[] => ids.map((i) => SOURCES[i % 2]!.name!);

const laneDir = (dir: string): string => join(dir, SINK);
const segmentFiles = (dir: string): string[] => readdirSync(laneDir(dir)).filter((f) => f.endsWith(".seg")).sort();
const diskBytes = (dir: string): number => segmentFiles(dir).reduce((a, f) => a + statSync(join(laneDir(dir), f)).size, 0);

interface Frame {
  /** Offset of the frame (its u32 length). */
  offset: number;
  /** Body length. */
  len: number;
  /** Offset of the record JSON. */
  payload: number;
}

/** The frames of a segment file, by their length fields alone (no checksum check). */
function frames(path: string): Frame[] {
  const buf = readFileSync(path);
  expect(buf.subarray(0, HEADER).equals(SEGMENT_MAGIC)).toBe(true);
  const out: Frame[] = [];
  for (let p = HEADER; p + 8 <= buf.length; ) {
    const len = buf.readUInt32LE(p);
    const nameLen = buf.readUInt16LE(p + 8);
    out.push({ offset: p, len, payload: p + 8 + 2 + nameLen });
    p += 8 + len;
  }
  return out;
}

/** A pid that is certainly not alive: a child that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  expect(r.status).toBe(0);
  return r.pid!;
}

describe("DiskQueue", () => {
  it("reads back what it wrote, in order, with each record's source name", async () => {
    const dir = freshDir();
    const hooks = new Hooks();
    const s = openQueue(dir, hooks);
    const n = 50;
    expect(s.active).toBe(false);
    const appended = range(0, n).map((i) => record(i));
    for (const e of appended) s.append(e);
    expect(s.records).toBe(n);
    expect(s.active).toBe(true);
    await hooks.persistedAll(n);
    expect(hooks.persistedCount).toBe(n);
    expect(s.written).toBe(n);
    expect(s.readable).toBe(true);
    expect(s.bytes).toBe(diskBytes(dir));
    // One burst of appends still lands in segments of segmentBytes (4096), not in one segment of all of it.
    expect(segmentFiles(dir).length).toBeGreaterThan(1);
    for (const f of segmentFiles(dir)) expect(statSync(join(laneDir(dir), f)).size).toBeLessThanOrEqual(4096);

    const back = await readAll(s, 7);
    expect(texts(back.entries)).toEqual(texts(appended));
    expect(names(back.entries)).toEqual(nameOf(range(0, n)));
    expect(new Set(names(back.entries))).toEqual(new Set(["app-a", "worker-b"]));
    expect(back.recovered).toBe(0);
    expect(s.recovered).toBe(0);
    expect(s.records).toBe(0);
    expect(s.readable).toBe(false);
    expect(hooks.corruptCalls).toEqual([]);
    expect(hooks.errors).toEqual([]);
  });

  it("rotates segments at segmentBytes and deletes each once it was read to its end and all its records settled", async () => {
    const dir = freshDir();
    const hooks = new Hooks();
    const s = openQueue(dir, hooks, { segmentBytes: 4096 });
    const n = 120;
    const appended = await appendRecords(s, hooks, 0, n, 10);
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThanOrEqual(3);
    expect(s.segmentCount).toBe(files.length);
    for (const f of files) expect(statSync(join(laneDir(dir), f)).size).toBeLessThanOrEqual(4096);
    // Which records each segment holds (in order: segment k holds the ids after segment k-1's).
    const perSegment = files.map((f) => frames(join(laneDir(dir), f)).length);
    expect(perSegment.reduce((a, b) => a + b, 0)).toBe(n);
    const lastId = (k: number): number => perSegment.slice(0, k + 1).reduce((a, b) => a + b, 0) - 1;

    // Read back without settling: nothing may be deleted yet.
    const back = await readAll(s, 9);
    expect(texts(back.entries)).toEqual(texts(appended));
    expect(segmentFiles(dir)).toEqual(files);
    expect(s.segmentCount).toBe(files.length);

    // Settle up to the middle of segment 2: segments 0 and 1 go, the rest stay.
    const settled = lastId(1) + 3;
    settleAll(back.entries.slice(0, settled));
    await waitFor(() => segmentFiles(dir).length === files.length - 2, { message: () => `2 segments deleted, on disk: ${segmentFiles(dir).join(", ")}` });
    expect(segmentFiles(dir)).toEqual(files.slice(2));
    expect(s.segmentCount).toBe(files.length - 2);
    expect(s.bytes).toBe(diskBytes(dir));

    // Settle the rest: every segment goes, but perhaps the one being written (it may be kept for the next record).
    settleAll(back.entries.slice(settled));
    await waitFor(() => s.segmentCount <= 1 && segmentFiles(dir).length === s.segmentCount, {
      message: () => `at most 1 segment left, ${s.segmentCount} counted, on disk: ${segmentFiles(dir).join(", ")}`,
    });
    expect(files.slice(-1)).toEqual(expect.arrayContaining(segmentFiles(dir)));
    expect(s.bytes).toBe(diskBytes(dir));

    // Closed with everything settled: nothing left for a next run.
    await closeQueue(s);
    expect(readdirSync(laneDir(dir))).toEqual([]);
    expect(hooks.errors).toEqual([]);
  });

  it("a record settled last (retried without end) keeps only its own segment: every later one read and settled goes", async () => {
    const dir = freshDir();
    const hooks = new Hooks();
    const s = openQueue(dir, hooks, { segmentBytes: 4096 });
    await appendRecords(s, hooks, 0, 120, 10);
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThanOrEqual(4);
    const back = await readAll(s, 1000);
    // Everything but record 0 settles, in an order of its own.
    settleAll(back.entries.slice(1).reverse());
    await waitFor(() => segmentFiles(dir).length <= 2, { message: () => `only the stuck record's segment (and the one written) left, on disk: ${segmentFiles(dir).join(", ")}` });
    expect(segmentFiles(dir)[0]).toBe(files[0]);
    await waitFor(() => s.bytes === diskBytes(dir), { message: () => `bytes ${s.bytes} = the files' ${diskBytes(dir)}` });
    // A crash now: the next run starts at the stuck record and finds nothing of the deleted segments missing.
    await closeQueue(s);
    const again = openQueue(dir, new Hooks(), { segmentBytes: 4096 });
    const replay = await readAll(again, 1000);
    expect(replay.entries[0]!.json).toBe(back.entries[0]!.json);
    expect(texts(replay.entries)).toEqual(jsonOf(range(0, frames(join(laneDir(dir), files[0]!)).length)));
    // Settled at last, it goes too.
    settleAll(replay.entries);
    await waitFor(() => segmentFiles(dir).length <= 1, { message: () => `at most the segment being written, on disk: ${segmentFiles(dir).join(", ")}` });
  });

  it("a record retried without end while the reader keeps up: each burst's segment goes once its records settle", async () => {
    const dir = freshDir();
    const hooks = new Hooks();
    const s = openQueue(dir, hooks, { segmentBytes: 4096 });
    await appendRecords(s, hooks, 0, 1);
    const [stuck] = (await readAll(s, 1000)).entries;
    // Bursts, each read back and settled before the next: the first record never settles.
    for (let burst = 1; burst <= 20; burst++) {
      await appendRecords(s, hooks, burst * 10, burst * 10 + 10);
      settleAll((await readAll(s, 1000)).entries);
    }
    await waitFor(() => segmentFiles(dir).length <= 2, { message: () => `the stuck record's segment and at most one more, on disk: ${segmentFiles(dir).join(", ")}` });
    // (A deletion counts its bytes off before its unlink lands.)
    await waitFor(() => s.bytes === diskBytes(dir), { message: () => `bytes ${s.bytes} = the files' ${diskBytes(dir)}` });
    settleAll([stuck!]);
    await closeQueue(s);
  });

  it("a new run on the same directory reads back exactly what the last run had not settled (position)", async () => {
    const dir = freshDir();
    const hooks1 = new Hooks();
    const s1 = openQueue(dir, hooks1, { segmentBytes: 4096 });
    const n = 120;
    const k = 45;
    await appendRecords(s1, hooks1, 0, n, 10);
    expect(segmentFiles(dir).length).toBeGreaterThanOrEqual(3);
    const back1 = await readAll(s1, 8);
    expect(back1.entries).toHaveLength(n);
    settleAll(back1.entries.slice(0, k));
    await closeQueue(s1);
    expect(existsSync(join(laneDir(dir), "lock"))).toBe(false);
    expect(readFileSync(join(laneDir(dir), "position"), "utf8")).toMatch(/^\d+ \d+\n$/);

    const hooks2 = new Hooks();
    const s2 = openQueue(dir, hooks2, { segmentBytes: 4096 });
    expect(s2.readable).toBe(true);
    const back2 = await readAll(s2, 8, true);
    expect(texts(back2.entries)).toEqual(jsonOf(range(k, n)));
    expect(names(back2.entries)).toEqual(nameOf(range(k, n)));
    expect(back2.recovered).toBe(n - k);
    expect(s2.recovered).toBe(n - k);
    expect(s2.records).toBe(0);
    expect(hooks2.corruptCalls).toEqual([]);
    // All settled and no segment being written: every segment goes (deleted in the background, so wait).
    await waitFor(() => segmentFiles(dir).length === 0, { message: () => `no segment left, on disk: ${segmentFiles(dir).join(", ")}` });
    await closeQueue(s2);
    expect(readdirSync(laneDir(dir))).toEqual([]);
  });

  it("after a crash (a lock left by a dead process) a new run takes the directory over and reads everything back", async () => {
    const dir = freshDir();
    const hooks1 = new Hooks();
    const crashed = openQueue(dir, hooks1, { segmentBytes: 4096 });
    const n = 60;
    await appendRecords(crashed, hooks1, 0, n, 20);
    // The process "dies" without close(): its lock stays behind, naming a pid that is gone.
    const pid = deadPid();
    writeFileSync(join(laneDir(dir), "lock"), String(pid));

    const hooks2 = new Hooks();
    const s2 = openQueue(dir, hooks2, { segmentBytes: 4096 });
    expect(readFileSync(join(laneDir(dir), "lock"), "utf8")).toBe(OUR_LOCK);
    const back = await readAll(s2, 16, true);
    expect(texts(back.entries)).toEqual(jsonOf(range(0, n)));
    expect(names(back.entries)).toEqual(nameOf(range(0, n)));
    expect(back.recovered).toBe(n);
    expect(s2.recovered).toBe(n);
    expect(hooks2.corruptCalls).toEqual([]);
    await closeQueue(s2);
    // Let the "dead" one go last (its handles are still open); the directory is removed afterwards anyway.
    await closeQueue(crashed);
  });

  it("a position left behind with no segment does not hide the next run's records", async () => {
    // A run deleted its last segment and crashed before its position write: `position` names a segment gone.
    const dir = freshDir();
    mkdirSync(laneDir(dir), { recursive: true });
    writeFileSync(join(laneDir(dir), "position"), "7 300\n");
    const hooks1 = new Hooks();
    const crashed = openQueue(dir, hooks1);
    await appendRecords(crashed, hooks1, 0, 5);
    writeFileSync(join(laneDir(dir), "lock"), String(deadPid()));

    const hooks2 = new Hooks();
    const s2 = openQueue(dir, hooks2);
    const back = await readAll(s2, 100, true);
    expect(texts(back.entries)).toEqual(jsonOf(range(0, 5)));
    await closeQueue(s2);
    await closeQueue(crashed);
  });

  it("a damaged position naming a segment past the ones there deletes nothing: all is read again, and said", async () => {
    const dir = freshDir();
    const hooks1 = new Hooks();
    const crashed = openQueue(dir, hooks1, { segmentBytes: 4096 });
    const n = 120;
    await appendRecords(crashed, hooks1, 0, n, 10);
    expect(segmentFiles(dir).length).toBeGreaterThanOrEqual(3);
    writeFileSync(join(laneDir(dir), "lock"), String(deadPid()));
    writeFileSync(join(laneDir(dir), "position"), "99 8\n"); // a digit gone wrong

    const hooks2 = new Hooks();
    const s2 = openQueue(dir, hooks2, { segmentBytes: 4096 });
    // Before, every segment below 99 was deleted as settled: 120 records gone, nothing counted or said.
    const back = await readAll(s2, 16, true);
    expect(texts(back.entries)).toEqual(jsonOf(range(0, n)));
    expect(hooks2.errors.map((e) => e.message)).toEqual([expect.stringMatching(/names segment .*99.*, which is not there: the queue is read again/)]);
    await closeQueue(s2);
    await closeQueue(crashed);
  });

  it("records settled after close() change nothing on disk: the next owner of the directory reads them all", async () => {
    const dir = freshDir();
    const hooks1 = new Hooks();
    const q1 = openQueue(dir, hooks1, { segmentBytes: 1024 });
    await appendRecords(q1, hooks1, 0, 30);
    const late = (await readAll(q1, 100)).entries;
    await closeQueue(q1);
    const files = segmentFiles(dir);
    const q2 = openQueue(dir, new Hooks(), { segmentBytes: 1024 });
    // A send that outlived stop()'s deadline delivers them now, after the directory changed hands.
    settleAll(late);
    const back = await readAll(q2, 7, true);
    expect(texts(back.entries)).toEqual(jsonOf(range(0, 30)));
    expect(files.length).toBeGreaterThan(3);
    await closeQueue(q2);
  });

  it("close() right after append() writes the record first, and leaves only what is unsettled", async () => {
    const dir = freshDir();
    const hooks = new Hooks();
    const s = openQueue(dir, hooks);
    s.append(record(0));
    await closeQueue(s);
    expect(hooks.persistedCount).toBe(1);
    expect(existsSync(join(laneDir(dir), "lock"))).toBe(false);

    // Read back and settled, then closed at once: no segment is left for the next run to send again.
    const hooks2 = new Hooks();
    const s2 = openQueue(dir, hooks2);
    settleAll((await readAll(s2, 10)).entries);
    await closeQueue(s2);
    expect(readdirSync(laneDir(dir))).toEqual([]);
  });

  it("one queue per directory: a second open() throws (the directory is locked) while the first is open, and works after close()", async () => {
    const dir = freshDir();
    const first = openQueue(dir, new Hooks());
    const second = new DiskQueue(SINK, { dir, maxBytes: 1 << 20, segmentBytes: 4096, fsync: true }, new Hooks());
    let thrown: unknown;
    try {
      second.open();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AggregatorError);
    expect((thrown as QueueError).code).toBe(LOCKED_CODE);
    expect((thrown as Error).message).toContain(String(process.pid));
    // The failed attempt left the lock alone.
    expect(readFileSync(join(laneDir(dir), "lock"), "utf8")).toBe(OUR_LOCK);

    await closeQueue(first);
    expect(existsSync(join(laneDir(dir), "lock"))).toBe(false);
    second.open();
    queues.push(second);
    expect(readFileSync(join(laneDir(dir), "lock"), "utf8")).toBe(OUR_LOCK);
  });

  it("a lock naming a live pid that started at another time (the pid was reused) is taken over; one naming this process is not", () => {
    const dir = freshDir();
    mkdirSync(laneDir(dir), { recursive: true });
    // Our own pid with a start time that is not ours: the process that wrote it is gone, its pid now ours.
    writeFileSync(join(laneDir(dir), "lock"), `${process.pid} ${Number(SELF_START) + 1}`);
    expect(inspectDiskQueue(laneDir(dir)).lock).toEqual({ pid: process.pid, alive: false });
    openQueue(dir, new Hooks());
    expect(readFileSync(join(laneDir(dir), "lock"), "utf8")).toBe(OUR_LOCK);
    expect(inspectDiskQueue(laneDir(dir)).lock).toEqual({ pid: process.pid, alive: true });
    // The same pid with the right start time is a live holder: refused, and the lock left alone.
    const other = new DiskQueue(SINK, { dir, maxBytes: 1 << 20, segmentBytes: 4096, fsync: true }, new Hooks());
    expect(() => other.open()).toThrow(expect.objectContaining({ code: LOCKED_CODE }) as Error);
    expect(readFileSync(join(laneDir(dir), "lock"), "utf8")).toBe(OUR_LOCK);
  });

  describe("damaged segments", () => {
    /** DiskQueue records [0, n) in `batch`es, close, and return the segment files. */
    async function leave(dir: string, n: number, batch = n): Promise<string[]> {
      const hooks = new Hooks();
      const s = openQueue(dir, hooks, { segmentBytes: 4096 });
      await appendRecords(s, hooks, 0, n, batch);
      await closeQueue(s);
      return segmentFiles(dir).map((f) => join(laneDir(dir), f));
    }

    it("skips a record whose payload changed (checksum), reads every other one, counts one region", async () => {
      const dir = freshDir();
      const [seg] = await leave(dir, 20);
      const damaged = 7;
      const f = frames(seg!)[damaged]!;
      const buf = readFileSync(seg!);
      buf[f.payload + 5]! ^= 0x20;
      writeFileSync(seg!, buf);

      const hooks = new Hooks();
      const s = openQueue(dir, hooks);
      const back = await readAll(s, 6, true);
      const ids = range(0, 20).filter((i) => i !== damaged);
      expect(texts(back.entries)).toEqual(jsonOf(ids));
      expect(names(back.entries)).toEqual(nameOf(ids));
      expect(back.recovered).toBe(19);
      expect(hooks.corruptCalls).toHaveLength(1);
      expect(hooks.corruptCalls[0]).toMatchObject({ records: 1, recovered: true });
      expect(hooks.corruptCalls[0]!.detail).toContain("000000000001.seg");
      expect(s.corruptRegions).toBe(1);
    });

    it.each([
      ["in the middle of its JSON", (f: Frame) => f.payload + 10],
      ["inside its frame header", (f: Frame) => f.offset + 3],
    ])("a torn tail (the last frame cut %s): every whole record is read back, the tail counted once", async (_where, cut) => {
      const dir = freshDir();
      const [seg] = await leave(dir, 20);
      const all = frames(seg!);
      truncateSync(seg!, cut(all[all.length - 1]!));

      const hooks = new Hooks();
      const s = openQueue(dir, hooks);
      const back = await readAll(s, 6, true);
      expect(texts(back.entries)).toEqual(jsonOf(range(0, 19)));
      expect(hooks.corruptCalls).toHaveLength(1);
      expect(hooks.corruptCalls[0]).toMatchObject({ records: 1, recovered: true });
      expect(hooks.corruptCalls[0]!.detail).toContain("000000000001.seg");
      expect(s.corruptRegions).toBe(1);
      expect(s.readable).toBe(false);
    });

    it("skips a segment with a wrong header whole, counts it once, and reads the segments around it", async () => {
      const dir = freshDir();
      const segs = await leave(dir, 90, 10);
      expect(segs.length).toBeGreaterThanOrEqual(3);
      const count = segs.map((p) => frames(p).length);
      const before = count[0]!;
      const lost = count[1]!;
      const buf = readFileSync(segs[1]!);
      buf.write("NOTAQUEU", 0, "latin1");
      writeFileSync(segs[1]!, buf);

      const hooks = new Hooks();
      const s = openQueue(dir, hooks);
      const back = await readAll(s, 7, true);
      const ids = [...range(0, before), ...range(before + lost, 90)];
      expect(texts(back.entries)).toEqual(jsonOf(ids));
      expect(hooks.corruptCalls).toHaveLength(1);
      expect(hooks.corruptCalls[0]).toMatchObject({ records: 1, recovered: true });
      expect(hooks.corruptCalls[0]!.detail).toContain("000000000002.seg");
      expect(s.corruptRegions).toBe(1);
      // Read past and settled around: the damaged segment goes with the others.
      await waitFor(() => segmentFiles(dir).length === 0, { message: () => `no segment left, on disk: ${segmentFiles(dir).join(", ")}` });
    });
  });

  describe("a segment file that fails under the queue", () => {
    /** 90 records of this run in segments of 4 KiB, and how many each segment holds. */
    async function written(dir: string, hooks: Hooks): Promise<{ s: DiskQueue; segs: string[]; count: number[] }> {
      const s = openQueue(dir, hooks, { segmentBytes: 4096 });
      await appendRecords(s, hooks, 0, 90, 10);
      const segs = segmentFiles(dir).map((f) => join(laneDir(dir), f));
      expect(segs.length).toBeGreaterThanOrEqual(3);
      return { s, segs, count: segs.map((p) => frames(p).length) };
    }

    it("a deleted segment is damage: its records are counted lost, and one read goes on with the segments after it", async () => {
      const dir = freshDir();
      const hooks = new Hooks();
      const { s, segs, count } = await written(dir, hooks);
      rmSync(segs[1]!);
      const r = await s.read(1000, 64 * 1024 * 1024);
      const ids = [...range(0, count[0]!), ...range(count[0]! + count[1]!, 90)];
      expect(texts(r.entries)).toEqual(jsonOf(ids));
      expect(hooks.corruptCalls).toEqual([{ records: count[1], detail: expect.stringContaining("its file is gone"), recovered: false }]);
      expect(s.readable).toBe(false);
    });

    it("a read that fails after some records were parsed hands those over; the failure comes with the next read", async () => {
      const dir = freshDir();
      const hooks = new Hooks();
      const { s, segs, count } = await written(dir, hooks);
      // A directory where segment 2 was: it opens, and reading it fails (EISDIR).
      rmSync(segs[1]!);
      mkdirSync(segs[1]!);
      const first = await s.read(1000, 64 * 1024 * 1024);
      expect(texts(first.entries)).toEqual(jsonOf(range(0, count[0]!)));
      await expect(s.read(1000, 64 * 1024 * 1024)).rejects.toMatchObject({ code: "EISDIR" });
      expect(hooks.corruptCalls).toEqual([]);
      rmSync(segs[1]!, { recursive: true });
    });
  });

  describe("maxBytes", () => {
    /** What a record's frame takes on disk, and what hasRoom reckons for it (the longest source name). */
    const frameBytes = (e: Entry): number => 8 + 2 + Buffer.byteLength(e.source!.name!) + e.bytes;
    const reckoned = (e: Entry): number => 8 + 2 + 128 + e.bytes;

    it("counts records appended but not yet written, and frees the space of its only segment once it was drained", async () => {
      const dir = freshDir();
      const hooks = new Hooks();
      const maxBytes = 16 * 1024;
      const s = openQueue(dir, hooks, { maxBytes, segmentBytes: maxBytes, fsync: false });
      let n = 0;
      let backlog = 0;
      for (; n < 10_000 && s.hasRoom(record(n).bytes); n++) {
        const e = record(n);
        s.append(e);
        backlog += frameBytes(e);
      }
      // Refused before anything reached the disk: only the backlog filled it.
      expect(n).toBeGreaterThan(10);
      expect(n).toBeLessThan(10_000);
      expect(s.bytes).toBe(0);
      expect(s.hasRoom(record(n).bytes)).toBe(false);
      expect(backlog + reckoned(record(n)) + HEADER).toBeGreaterThan(maxBytes);
      expect(backlog - frameBytes(record(n - 1)) + reckoned(record(n - 1)) + HEADER).toBeLessThanOrEqual(maxBytes);

      await hooks.persistedAll(n);
      expect(s.bytes).toBe(backlog + HEADER * s.segmentCount);
      expect(s.bytes).toBe(diskBytes(dir));
      expect(s.bytes).toBeLessThanOrEqual(maxBytes);
      expect(s.hasRoom(record(n).bytes)).toBe(false);

      // Its one segment is the one being written: drained and settled, it must still go, or the queue stays full.
      settleAll((await readAll(s, 100)).entries);
      await waitFor(() => s.hasRoom(record(n).bytes), { message: () => `room again (${s.bytes} bytes in ${s.segmentCount} segment(s))` });
    });

    it("has room again once records were read back, settled and their segments deleted", async () => {
      const dir = freshDir();
      const hooks = new Hooks();
      const maxBytes = 16 * 1024;
      const s = openQueue(dir, hooks, { maxBytes, segmentBytes: 4096, fsync: false });
      // Fill it a few records per write, so the records land in segments of segmentBytes.
      let n = 0;
      for (let full = false; !full; ) {
        const batch = n;
        for (let k = 0; k < 4; k++, n++) {
          if (!s.hasRoom(record(n).bytes)) {
            full = true;
            break;
          }
          s.append(record(n));
        }
        expect(n).toBeLessThan(10_000);
        if (n > batch) await hooks.persistedAll(n);
      }
      expect(s.segmentCount).toBeGreaterThanOrEqual(3);
      expect(s.bytes).toBeLessThanOrEqual(maxBytes);
      expect(s.bytes + reckoned(record(n)) + HEADER).toBeGreaterThan(maxBytes);

      const back = await readAll(s, 10);
      expect(texts(back.entries)).toEqual(jsonOf(range(0, n)));
      // Read back but not settled: still on disk, still no room.
      expect(s.hasRoom(record(n).bytes)).toBe(false);
      settleAll(back.entries);
      await waitFor(() => s.hasRoom(record(n).bytes), { message: () => `room again (${s.bytes} bytes in ${s.segmentCount} segment(s))` });
      expect(s.segmentCount).toBeLessThanOrEqual(1);
      await waitFor(() => segmentFiles(dir).length === s.segmentCount);
      expect(s.bytes).toBe(diskBytes(dir));
    });
  });

  it("inspectDiskQueue() reports the records each segment holds, what is unsettled, damage and the lock, without changing anything", async () => {
    const dir = freshDir();
    const hooks = new Hooks();
    const s = openQueue(dir, hooks, { segmentBytes: 4096 });
    await appendRecords(s, hooks, 0, 60, 10);
    settleAll((await s.read(25, 1 << 20)).entries);
    let seen = inspectDiskQueue(laneDir(dir));
    expect(seen.lock).toEqual({ pid: process.pid, alive: true });
    expect(seen.segments.reduce((a, g) => a + g.records, 0)).toBe(60 - deletedRecords(dir, 60));
    await closeQueue(s);

    const files = segmentFiles(dir);
    const before = files.map((f) => readFileSync(join(laneDir(dir), f)));
    seen = inspectDiskQueue(laneDir(dir));
    expect(seen.lock).toBeUndefined();
    expect(seen.position).toBeDefined();
    expect(seen.unsettled).toBe(35);
    expect(seen.segments.map((g) => g.file)).toEqual(files);
    expect(seen.segments.every((g) => g.damaged.length === 0)).toBe(true);
    expect(seen.bytes).toBe(diskBytes(dir));

    // One flipped byte in the last segment: one record fewer there, one damaged stretch where it was.
    const last = join(laneDir(dir), files.at(-1)!);
    const f = frames(last)[1]!;
    const buf = readFileSync(last);
    buf[f.payload]! ^= 0x01;
    writeFileSync(last, buf);
    const damaged = inspectDiskQueue(laneDir(dir));
    expect(damaged.unsettled).toBe(34);
    expect(damaged.segments.at(-1)!.damaged).toEqual([{ offset: f.offset, bytes: 8 + f.len }]);
    // It changed nothing: the files are as they were (but for the byte flipped here).
    expect(files.slice(0, -1).map((x) => readFileSync(join(laneDir(dir), x)))).toEqual(before.slice(0, -1));
    expect(segmentFiles(dir)).toEqual(files);
  });
});

/** Records of [0, n) whose segments were already deleted (settled): n minus what the files still hold. */
function deletedRecords(dir: string, n: number): number {
  return n - segmentFiles(dir).reduce((a, f) => a + frames(join(laneDir(dir), f)).length, 0);
}
