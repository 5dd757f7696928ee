// DiskQueue against a model, driven by seeded random steps on real files: appends of random records, reads of random
// sizes, settles of random subsets in random order (also while a read or a close() is under way), "catch up" (read and
// settle everything: the queue runs empty), clean restarts (close, open) and crash restarts (the old instance is
// dropped without close() and its lock left naming a dead pid). Small segments, so they rotate and are deleted all the
// time.
//
// The model. Record ids are appended in increasing order, so the queue's log is the ids 0..N-1 in order (no write
// fails, nothing is damaged). Each instance starts reading at some id S and must then hand back S, S+1, S+2, ... with
// no gap and nothing out of order, never an id not yet reported persisted. Where S lies:
//   - after a clean close: exactly at the closed instance's settle watermark W (its first record read and not settled,
//     or the next one it would have read when it settled all it read). Records settled out of order above W do come
//     again, unless their segment was deleted: a segment read to its end whose records all settled goes, whatever
//     comes before it (one record retried without end must not keep every later segment on disk). So a record settled
//     once may be skipped later, never one that was not. (Settles made while close() runs may or may not count: then
//     S lies between the watermarks before and after them.)
//   - after a crash: somewhere in [S_old, W_old] of the crashed instance (`position` is written about once a second,
//     and when is not observable here).
// That covers: no loss (nothing at or above the watermark is skipped), bounded duplicates (nothing below the last
// clean close's watermark comes again, nothing below a crashed instance's start), order. Besides: `records` (appended
// minus read back by this instance), `bytes` and `segmentCount` against the files, `written`, `recovered`, `readable`,
// inspectDiskQueue() after each clean close, and an empty directory after the final drain and close.
//
// Replay one seed: DQ_MODEL_SEED=<seed> [DQ_MODEL_STEPS=<steps>] npx vitest run test/unit/pipeline/disk-queue-model.test.ts
// A seed fixes which operation each step does and its parameters (each step draws from its own generator, seeded by
// seed and step number); how far a write has landed when a read runs is up to the machine, which the model allows.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DiskQueue, inspectDiskQueue, type DiskQueueHooks } from "../../../src/pipeline/disk-queue.js";
import { Entry, type AckTarget } from "../../../src/pipeline/entry.js";
import { waitFor } from "../../helpers/wait-for.js";
import { startTime } from "../../helpers/alive.js";
import { mulberry32 } from "../../helpers/random-json.js";

const SINK = "es";
const SEEDS = process.env.DQ_MODEL_SEED !== undefined ? [Number(process.env.DQ_MODEL_SEED)] : Array.from({ length: 20 }, (_, k) => k + 1);
const STEPS = process.env.DQ_MODEL_STEPS !== undefined ? Number(process.env.DQ_MODEL_STEPS) : 200;

/** The error class the queue reports with (named through the hooks). */
type QueueError = Parameters<DiskQueueHooks["error"]>[0];

const dirs: string[] = [];
/** Every instance a test opened, crashed ones included: afterEach closes what a failed test left open. */
const opened: DiskQueue[] = [];

afterEach(async () => {
  for (const q of opened.splice(0)) await q.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// ---- seeded randomness -------------------------------------------------------------------------------------------

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** The generator of one step: the same operations for a seed whatever the timing of earlier steps was. */
const stepRng = (seed: number, step: number): Rng => new Rng(Math.imul(seed, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca77));

// ---- records -----------------------------------------------------------------------------------------------------

const source = (name: string): AckTarget => ({ name, settle: () => {} });
/** Two named sources and none (a record without a source is stored with an empty name). */
const SOURCES: (AckTarget | undefined)[] = [source("app-a"), source("worker-b"), undefined];
/** Payload characters: ASCII, JSON escapes, 2-, 3- and 4-byte UTF-8. */
const ALPHABET = ["a", "b", "z", "Q", "7", " ", "-", '"', "\\", "\n", "é", "ü", "ß", "中", "文", "😀"];
const CHAR_BYTES = ALPHABET.map((c) => Buffer.byteLength(JSON.stringify(c)) - 2);

/** Record JSON of about `target` bytes (10..600), carrying its id. */
function recordJson(id: number, r: Rng, target: number): string {
  let p = "";
  let bytes = Buffer.byteLength(`{"id":${id},"p":""}`);
  while (bytes < target) {
    const k = r.int(0, ALPHABET.length - 1);
    p += ALPHABET[k];
    bytes += CHAR_BYTES[k]!;
  }
  return JSON.stringify({ id, p });
}

const ID = /^\{"id":(\d+),/;
function idOf(e: Entry): number {
  const m = ID.exec(e.json);
  if (m === null) throw new Error(`a record read back is not one this test wrote: ${e.json.slice(0, 80)}`);
  return Number(m[1]);
}

// ---- files -------------------------------------------------------------------------------------------------------

const segmentFiles = (lane: string): string[] => readdirSync(lane).filter((f) => f.endsWith(".seg"));
const fileBytes = (lane: string): number => segmentFiles(lane).reduce((a, f) => a + statSync(join(lane, f)).size, 0);

let deadPidCache: number | undefined;
/** A pid that is certainly not alive: a child that has exited (spawned once, again only if the pid came back). */
function deadPid(): number {
  if (deadPidCache !== undefined) {
    try {
      process.kill(deadPidCache, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") return deadPidCache;
    }
  }
  const r = spawnSync(process.execPath, ["-e", ""]);
  expect(r.status).toBe(0);
  deadPidCache = r.pid!;
  return deadPidCache;
}

/**
 * A crashed process takes its timers and its I/O with it. The "crashed" instance here lives on in this process, so
 * stop what it would still do on its own: the `position` write its timer makes about a second after a settle (it
 * would land in the directory the next instance owns), and wait for a deletion or position write already under way
 * (they finished, or never started, before the "crash"). Private members: this simulation is the only user.
 */
async function stopAsIfDead(q: DiskQueue): Promise<void> {
  const inner = q as unknown as { positionTimer: NodeJS.Timeout | undefined; positionWrite: unknown; releasing: unknown };
  expect(inner.positionWrite, "DiskQueue#positionWrite (stopped on a simulated crash)").toBeInstanceOf(Promise);
  expect(inner.releasing, "DiskQueue#releasing (awaited on a simulated crash)").toBeInstanceOf(Promise);
  clearTimeout(inner.positionTimer);
  inner.positionTimer = undefined;
  await inner.positionWrite;
  await inner.releasing;
}

// ---- the model ---------------------------------------------------------------------------------------------------

class Hooks implements DiskQueueHooks {
  persistedCount = 0;
  /** What must not happen here (no write fails, nothing is damaged); checked after every step. */
  readonly problems: string[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(private readonly onPersisted: (entries: readonly Entry[]) => void) {}

  persisted(entries: readonly Entry[]): void {
    this.onPersisted(entries);
    this.persistedCount += entries.length;
    this.waiters = this.waiters.filter((w) => (w.n <= this.persistedCount ? (w.resolve(), false) : true));
  }
  notPersisted(entries: readonly Entry[], error: QueueError): void {
    this.problems.push(`notPersisted(${entries.length} records): ${error.message}`);
  }
  corrupt(records: number, detail: string, recovered: boolean): void {
    this.problems.push(`corrupt(${records}, recovered=${recovered}): ${detail}`);
  }
  readable(): void {}
  roomAgain(): void {}
  error(error: QueueError): void {
    this.problems.push(`error: ${error.message}`);
  }

  persistedAll(n: number): Promise<void> {
    if (this.persistedCount >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

/** One DiskQueue instance and what the model expects of it. */
interface Instance {
  q: DiskQueue;
  hooks: Hooks;
  /** Ids from here on were appended by this instance; those below by earlier ones (`recovered` when read). */
  firstOwn: number;
  appended: number;
  /** Records of its own it read back (for `records`). */
  readOwn: number;
  recovered: number;
  /** Where its reading starts: an id in [lo, hi]; the first id it reads fixes it (`start`). */
  lo: number;
  hi: number;
  start: number | undefined;
  /** The id its next read must begin with (once `start` is known). */
  next: number;
  settled: Set<number>;
  /** Settle watermark: every id in [start, wm) this instance read was settled by it (advanced lazily). */
  wm: number;
  /** Read back and not settled yet. */
  outstanding: Entry[];
}

interface Options {
  seed: number;
  steps: number;
}

async function runSeed({ seed, steps }: Options): Promise<void> {
  const setup = new Rng(seed);
  const segmentBytes = setup.int(1024, 8192);
  const fsync = setup.chance(0.25);
  // Some seeds read more than they append (the queue runs empty often: the segment being written is read to its
  // end, retired and deleted), others let it grow to hundreds of segments.
  const appendMax = setup.pick([50, 50, 20, 8]);
  const pAppend = setup.pick([0.32, 0.25, 0.2]);
  /** Of the restarts, the share that are crashes (runs of crashes keep an old `position` file around longest). */
  const crashShare = setup.pick([0.5, 0.75]);
  const dir = mkdtempSync(join(tmpdir(), "cla-dqm-"));
  dirs.push(dir);
  const lane = join(dir, SINK);
  const lockPath = join(lane, "lock");

  /** Appended so far (all of them, by every instance): ids 0..nextId-1. */
  let nextId = 0;
  const jsonById: string[] = [];
  const nameById: (string | undefined)[] = [];
  /** Ids reported persisted, over all instances: 0..persistedUpTo-1 (the hook must report them in order). */
  let persistedUpTo = 0;
  const everRead: boolean[] = [];
  /** Ids settled by any instance: their segment may be gone, so a later instance may skip them. */
  const settledEver = new Set<number>();
  /** The first id at or after `x` that was never settled: no instance may skip it. */
  const skipSettled = (x: number): number => {
    while (x < nextId && settledEver.has(x)) x++;
    return x;
  };
  /** Watermark at the last clean close: nothing below it may be read again (the brief's invariant 3, made exact). */
  let cleanWatermark = 0;
  const crashed: DiskQueue[] = [];
  const modelProblems: string[] = [];

  let step = -1;
  let op = "setup";
  const trace: string[] = [];
  const note = (text: string): void => {
    trace.push(`#${step} ${text}`);
    if (trace.length > 25) trace.shift();
  };

  const onPersisted = (entries: readonly Entry[]): void => {
    for (const e of entries) {
      const id = idOf(e);
      if (id !== persistedUpTo) modelProblems.push(`persisted() reported id ${id}, expected ${persistedUpTo} (out of order)`);
      persistedUpTo = Math.max(persistedUpTo, id + 1);
    }
  };

  const openInstance = (lo: number, hi: number): Instance => {
    const hooks = new Hooks(onPersisted);
    const q = new DiskQueue(SINK, { dir, maxBytes: 1 << 30, segmentBytes, fsync }, hooks);
    q.open();
    opened.push(q);
    return { q, hooks, firstOwn: nextId, appended: 0, readOwn: 0, recovered: 0, lo, hi, start: undefined, next: lo, settled: new Set(), wm: lo, outstanding: [] };
  };

  /** Where the next instance starts reading, as far as the model knows: [lo, hi]. */
  const watermark = (s: Instance): { lo: number; hi: number } => {
    if (s.start === undefined) return { lo: s.lo, hi: s.hi };
    while (s.wm < s.next && s.settled.has(s.wm)) s.wm++;
    return { lo: s.wm, hi: s.wm };
  };

  /** No write under way (every record appended reported persisted). */
  const quiet = (s: Instance): boolean => s.hooks.persistedCount === s.appended;

  /** Checks that hold after any step. */
  const checkAlways = (s: Instance): void => {
    expect(modelProblems, "model problems").toEqual([]);
    expect(s.hooks.problems, "hook calls that must not happen").toEqual([]);
    expect(s.q.corruptRegions, "corruptRegions").toBe(0);
    expect(s.q.records, "records = appended by this instance - read back by it").toBe(s.appended - s.readOwn);
    expect(s.q.recovered, "recovered = records of earlier instances read back").toBe(s.recovered);
  };

  /** Checks that hold once nothing is being written or deleted. */
  const checkQuiet = async (s: Instance): Promise<void> => {
    await s.hooks.persistedAll(s.appended);
    expect(persistedUpTo, "every record appended is persisted").toBe(nextId);
    expect(s.q.written, "written").toBe(s.appended);
    // Deletions of settled segments run in the background: wait (bounded) until none is under way.
    await waitFor(() => s.q.bytes === fileBytes(lane) && s.q.segmentCount === segmentFiles(lane).length, {
      timeout: 2000,
      message: () => `bytes ${s.q.bytes} = segment files' ${fileBytes(lane)}, segmentCount ${s.q.segmentCount} = ${segmentFiles(lane).length} files`,
    });
    checkReadable(s);
    checkAlways(s);
  };

  /** With no write under way, `readable` says exactly whether a record is left for this instance to read. */
  const checkReadable = (s: Instance): void => {
    if (!quiet(s)) return;
    const n = persistedUpTo;
    // Ids settled before may be gone with their segment: readable is certain only up to the first one never settled.
    if (s.start !== undefined) {
      if (skipSettled(s.next) < n) expect(s.q.readable, `readable (next id ${s.next}, ${n} persisted)`).toBe(true);
      else if (s.next >= n) expect(s.q.readable, `readable (next id ${s.next}, ${n} persisted)`).toBe(false);
    } else if (skipSettled(s.hi) < n) expect(s.q.readable, `readable (start in [${s.lo}, ${s.hi}], ${n} persisted)`).toBe(true);
    else if (s.lo >= n) expect(s.q.readable, `readable (start in [${s.lo}, ${s.hi}], ${n} persisted)`).toBe(false);
  };

  const append = (s: Instance, r: Rng, k: number): void => {
    for (let j = 0; j < k; j++) {
      const id = nextId++;
      const json = recordJson(id, r, r.int(10, 600));
      const src = r.pick(SOURCES);
      jsonById[id] = json;
      nameById[id] = src?.name;
      const e = new Entry(json, Buffer.byteLength(json), src, id);
      e.pending = 1;
      s.q.append(e);
      s.appended++;
    }
  };

  /** Settle a random share of the outstanding entries (all with `all`), in random order. */
  const settle = (s: Instance, r: Rng, all = false): number => {
    if (s.outstanding.length === 0) return 0;
    const p = all ? 1 : r.float();
    const chosen: Entry[] = [];
    const kept: Entry[] = [];
    for (const e of s.outstanding) (r.chance(p) ? chosen : kept).push(e);
    s.outstanding = kept;
    for (const e of r.shuffle(chosen)) {
      s.settled.add(idOf(e));
      settledEver.add(idOf(e));
      e.pending = 1;
      e.settleOne(true);
    }
    return chosen.length;
  };

  const read = async (s: Instance, maxRecords: number, maxBytes: number, during?: () => void): Promise<number> => {
    const wasQuiet = quiet(s);
    const wasReadable = s.q.readable;
    const reading = s.q.read(maxRecords, maxBytes);
    during?.();
    const { entries, recovered } = await reading;
    if (wasQuiet && wasReadable) expect(entries.length, "a read with records on disk and no write under way returns one at least").toBeGreaterThan(0);
    expect(entries.length, "at most maxRecords").toBeLessThanOrEqual(maxRecords);
    if (entries.length > 1) expect(entries.reduce((a, e) => a + e.bytes, 0), "at most maxBytes (but one record)").toBeLessThanOrEqual(maxBytes);
    let earlier = 0;
    for (const e of entries) {
      const id = idOf(e);
      if (s.start === undefined) {
        expect(id, `the first id this instance reads lies in [${s.lo}, ${s.hi}]: not below (it was settled, its place saved)`).toBeGreaterThanOrEqual(s.lo);
        expect(id, `the first id this instance reads lies in [${s.lo}, ${s.hi}] (or past settled ones): not above (those between were never settled: lost)`).toBeLessThanOrEqual(skipSettled(s.hi));
        s.start = id;
        s.next = id;
        s.wm = id;
      }
      // Ids settled by an earlier instance may be skipped (their segment was deleted); for this one's watermark they
      // count as settled, as the queue never hands them out.
      while (s.next < id && settledEver.has(s.next)) s.settled.add(s.next++);
      expect(id, `the next id read (after ${s.next - 1}; those skipped were settled before)`).toBe(s.next);
      expect(id, "an id reported persisted").toBeLessThan(persistedUpTo);
      expect(id, "not below the watermark of the last clean close").toBeGreaterThanOrEqual(cleanWatermark);
      expect(e.json, `record ${id}'s JSON`).toBe(jsonById[id]);
      expect(e.source?.name, `record ${id}'s source name`).toBe(nameById[id]);
      s.next = id + 1;
      everRead[id] = true;
      if (id >= s.firstOwn) s.readOwn++;
      else earlier++;
      s.outstanding.push(e);
    }
    expect(recovered, "recovered: records of an earlier instance in this read").toBe(earlier);
    s.recovered += earlier;
    return entries.length;
  };

  /** After close(): everything appended is on disk, the lock is gone, and the files say where the next run starts. */
  const checkClosed = (s: Instance, lo: number, hi: number): void => {
    expect(persistedUpTo, "close() writes what was appended").toBe(nextId);
    expect(s.q.bytes, "bytes after close = segment files").toBe(fileBytes(lane));
    expect(existsSync(lockPath), "close() releases the lock").toBe(false);
    const w = { lo, hi };
    const seen = inspectDiskQueue(lane);
    expect(seen.lock, "inspect: no lock").toBeUndefined();
    expect(seen.bytes, "inspect: bytes").toBe(fileBytes(lane));
    expect(seen.segments.filter((g) => g.damaged.length > 0), "inspect: damaged segments").toEqual([]);
    // The records the next run sends: every one from the watermark on.
    expect(seen.unsettled, `inspect: unsettled = ${nextId} - watermark [${w.lo}, ${w.hi}]`).toBeLessThanOrEqual(nextId - w.lo);
    let neverSettled = 0;
    for (let id = w.hi; id < nextId; id++) if (!settledEver.has(id)) neverSettled++;
    expect(seen.unsettled, `inspect: unsettled ≥ the ${neverSettled} ids from watermark ${w.hi} on never settled`).toBeGreaterThanOrEqual(neverSettled);
  };

  /**
   * close(): returns where the next instance starts reading. With `settleDuring`, entries are settled right after
   * close() was called (a send that comes back while the lane closes): the position saved may or may not count them.
   */
  const closeClean = async (s: Instance, r: Rng, settleDuring: boolean, all = false): Promise<{ lo: number; hi: number }> => {
    const before = watermark(s);
    const closing = s.q.close();
    if (settleDuring) settle(s, r, all);
    await closing;
    opened.splice(opened.indexOf(s.q), 1);
    const after = watermark(s);
    checkClosed(s, before.lo, after.hi);
    cleanWatermark = before.lo;
    return { lo: before.lo, hi: after.hi };
  };
  const cleanRestart = async (s: Instance, r: Rng, settleDuring: boolean): Promise<Instance> => {
    const { lo, hi } = await closeClean(s, r, settleDuring);
    return openInstance(lo, hi);
  };

  const crashRestart = async (s: Instance): Promise<Instance> => {
    // Only when nothing is being written: a write still under way would land after the "crash".
    await s.hooks.persistedAll(s.appended);
    await stopAsIfDead(s.q);
    crashed.push(s.q);
    writeFileSync(lockPath, String(deadPid()));
    // It may have written `position` any time up to now: the next one starts between this one's start and watermark.
    const w = watermark(s);
    const next = openInstance(s.start ?? s.lo, w.hi);
    expect(readFileSync(lockPath, "utf8"), "the new instance took the lock over").toBe(`${process.pid} ${startTime(process.pid)}`);
    return next;
  };

  let s = openInstance(0, 0);
  try {
    for (step = 0; step < steps; step++) {
      const r = stepRng(seed, step);
      const x = r.float();
      if (x < pAppend) {
        const k = r.int(1, appendMax);
        op = `append ${k} (ids ${nextId}..${nextId + k - 1})`;
        append(s, r, k);
        if (r.chance(0.35)) {
          op += ", await persisted";
          await checkQuiet(s);
        }
      } else if (x < pAppend + 0.25) {
        const maxRecords = r.int(1, 80);
        const maxBytes = r.chance(0.3) ? r.int(1, 4000) : 1 << 20;
        const settleDuring = r.chance(0.25);
        const appendDuring = r.chance(0.15) ? r.int(1, 20) : 0;
        op = `read(${maxRecords}, ${maxBytes})${settleDuring ? " + settle during it" : ""}${appendDuring > 0 ? ` + append ${appendDuring} during it` : ""}`;
        if (!s.q.readable) {
          op += ": not readable";
          checkReadable(s);
        } else {
          const got = await read(s, maxRecords, maxBytes, () => {
            if (settleDuring) settle(s, r);
            if (appendDuring > 0) append(s, r, appendDuring);
          });
          op += `: ${got} records, next ${s.next}`;
        }
      } else if (x < pAppend + 0.41) {
        op = `settle of ${s.outstanding.length} outstanding`;
        op += `: ${settle(s, r)}`;
      } else if (x < pAppend + 0.45) {
        // A lane that keeps up: the queue runs empty (its segment being written is retired and deleted).
        op = "catch up: read and settle all";
        await s.hooks.persistedAll(s.appended);
        for (let reads = 0; s.q.readable; reads++) {
          expect(reads, "reads of a finite queue").toBeLessThan(100_000);
          await read(s, r.int(1, 200), 1 << 20);
        }
        settle(s, r, true);
        await checkQuiet(s);
        expect(s.q.records, "caught up: nothing of its own left unread").toBe(0);
      } else if (x < pAppend + 0.55) {
        op = "await persisted, check disk";
        await checkQuiet(s);
      } else if (x < pAppend + 0.55 + (0.45 - pAppend) * (1 - crashShare)) {
        const settleDuring = r.chance(0.3);
        op = `clean restart (watermark ${JSON.stringify(watermark(s))}${settleDuring ? ", settles during close()" : ""})`;
        s = await cleanRestart(s, r, settleDuring);
        await checkQuiet(s);
      } else {
        op = `crash restart (start ${s.start ?? `[${s.lo}, ${s.hi}]`}, watermark ${JSON.stringify(watermark(s))})`;
        s = await crashRestart(s);
        await checkQuiet(s);
      }
      note(op);
      checkAlways(s);
    }

    // The end: a clean restart, then read back and settle everything.
    step = steps;
    const r = stepRng(seed, steps);
    op = "final: clean restart";
    s = await cleanRestart(s, r, false);
    op = "final: drain";
    for (let reads = 0; s.q.readable; reads++) {
      expect(reads, "reads of a finite queue").toBeLessThan(100_000);
      await read(s, r.int(1, 200), 1 << 20);
      settle(s, r, true);
    }
    await checkQuiet(s);
    const missing = Array.from({ length: nextId }, (_, id) => id).filter((id) => everRead[id] !== true);
    expect(missing, "ids appended and never read back").toEqual([]);
    if (s.start !== undefined) expect(skipSettled(s.next), "the final instance read up to the last id (but ids settled before)").toBe(nextId);
    else expect(skipSettled(s.hi), "nothing left to read: its start is the end (but ids settled before)").toBe(nextId);
    op = "final: close";
    let next = await closeClean(s, r, false);
    expect(readdirSync(lane), "all read back and settled, then closed: nothing left in the directory").toEqual([]);
    s = openInstance(next.lo, next.hi);
    // Once more with a segment of its own, the one being written: appended, read back, and settled before close()
    // (it is retired and deleted at once) or while close() runs (close() deletes it).
    const k = r.int(1, 50);
    const settleDuringClose = r.chance(0.5);
    op = `final: append ${k}, read back, settle ${settleDuringClose ? "during" : "before"} close()`;
    append(s, r, k);
    await s.hooks.persistedAll(s.appended);
    for (let reads = 0; s.q.readable; reads++) {
      expect(reads, "reads of a finite queue").toBeLessThan(100_000);
      await read(s, r.int(1, 200), 1 << 20);
    }
    expect(s.next).toBe(nextId);
    if (!settleDuringClose) settle(s, r, true);
    next = await closeClean(s, r, settleDuringClose, true);
    expect(s.outstanding).toEqual([]);
    expect(next.hi, "all settled").toBe(nextId);
    expect(readdirSync(lane), "all read back and settled, then closed: nothing left in the directory").toEqual([]);
    expect(s.q.bytes).toBe(0);
  } catch (error) {
    if (error instanceof Error) {
      error.message = `[seed ${seed}, step ${step}: ${op}; segmentBytes ${segmentBytes}, fsync ${fsync}] ${error.message}\nlast steps:\n  ${trace.join("\n  ")}\nreplay: DQ_MODEL_SEED=${seed} DQ_MODEL_STEPS=${steps} npx vitest run test/unit/pipeline/disk-queue-model.test.ts`;
    }
    throw error;
  }
  // Only now, after every assertion: let the "crashed" instances go (they still hold file handles).
  for (const q of crashed) {
    opened.splice(opened.indexOf(q), 1);
    await q.close();
  }
}

describe("DiskQueue model (seeded random steps)", () => {
  it.each(SEEDS)(`seed %i: ${STEPS} random steps keep order, lose nothing, bound duplicates and account for the disk`, async (seed) => {
    await runSeed({ seed, steps: STEPS });
  });
});
