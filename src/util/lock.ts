// Lock files that name the process using a directory or file: its pid and, where the OS tells it, its start time
// (a pid reused by a later process does not keep the lock). Used by disk queues and checkpoint files.
import { randomBytes } from "node:crypto";
import { closeSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * A process's start time, in clock ticks since boot (Linux: /proc/<pid>/stat field 22), and whether it has exited
 * (a zombie its parent has not reaped yet); undefined where there is no /proc. With the pid, the start time names one
 * process: a later process given the same pid started later.
 */
function processStart(pid: number): { ticks: string; exited: boolean } | undefined {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // After the command name (in parentheses, and it may hold spaces): field 3 (state) onwards.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ticks: fields[19] ?? "", exited: fields[0] === "Z" };
}

/** What `lock` holds: the pid and, where the OS tells it, the process's start time. */
export function lockText(pid: number): string {
  const start = processStart(pid);
  return start === undefined ? String(pid) : `${pid} ${start.ticks}`;
}

/**
 * Who holds a lock (from its text), and whether that process still runs. A lock written with a start time is held
 * only by the process that started then: a pid reused by another process does not keep it. Without one (no /proc
 * where it was written), a live pid is taken to hold it.
 */
export function lockHolder(text: string | undefined): { pid: number; started: boolean; alive: boolean } | undefined {
  const m = text === undefined ? null : /^(\d+)(?: (\d+))?\n?$/.exec(text);
  if (m === null) return undefined;
  const pid = Number(m[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  const started = m[2] !== undefined;
  if (!alive(pid)) return { pid, started, alive: false };
  const now = processStart(pid);
  // A zombie has exited; a different start time is a different process.
  const same = now === undefined || (!now.exited && (!started || now.ticks === m[2]));
  return { pid, started, alive: same };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The live process holding a lock, as `lockHolder` reads it. */
export type LockHolder = { pid: number; started: boolean; alive: true };

/**
 * Take the lock file at `path` for this process. One left by a process that is gone (or unreadable) is taken over,
 * as is one `takeOver` accepts. Returns the live holder when another keeps it. Throws what the file system threw.
 *
 * Safe against processes that race for it (every worker of a cluster starting at once, or restarted after a crash
 * left a stale lock): the lock appears whole (written to a file of our own, then hard-linked into place, which fails
 * if it exists), so nobody reads it half written and takes it for a stale one; and a stale lock is removed only under
 * a second lock (`<path>.takeover`), after a second look, so that no process removes a lock another has just made.
 */
export function takeLock(path: string, takeOver: (holder: LockHolder) => boolean = () => false): LockHolder | undefined {
  const own = `${path}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(own, lockText(process.pid), { mode: 0o600, flag: "wx" });
  const held = (): LockHolder | undefined => {
    const holder = lockHolder(readOr(path));
    return holder?.alive === true && !takeOver(holder as LockHolder) ? (holder as LockHolder) : undefined;
  };
  try {
    for (;;) {
      if (createFrom(own, path)) return undefined;
      const holder = held();
      if (holder !== undefined) return holder;
      // Stale. Looked at again under the takeover lock, where nobody else removes it: taken over meanwhile, it is left
      // alone; gone meanwhile (removed by the process before us), nothing is removed: the next turn links ours; one
      // that names no process and is young is being written (open and write, by an older version of this library or
      // where hard links are not supported): it is waited for.
      let young = false;
      underTakeoverLock(path, own, () => {
        const text = readLockText(path);
        if (text === GONE) return;
        const now = lockHolder(text);
        if (now?.alive === true && !takeOver(now as LockHolder)) return;
        if (now === undefined && ageMs(path) < YOUNG_MS) young = true;
        else removeIfThere(path);
      });
      if (young) Atomics.wait(pause, 0, 0, 1);
    }
  } finally {
    unlinkSync(own);
  }
}

/** Link `from` to `path` unless `path` exists (false then). Where hard links are not supported, a copy made with O_EXCL. */
function createFrom(from: string, path: string): boolean {
  try {
    linkSync(from, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error;
  }
  try {
    const fd = openSync(path, "wx", 0o600);
    try {
      writeSync(fd, readFileSync(from));
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

/**
 * How long ago `path` was made (its inode's change time, which a hard link sets). 0 when it is gone (the next turn
 * links ours); Infinity when it cannot be looked at, so that removing it is tried, and its error thrown, rather than
 * waited on for ever.
 */
function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).ctimeMs;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" ? 0 : Number.POSITIVE_INFINITY;
  }
}

function removeIfThere(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

const GONE = Symbol("gone");

/** A lock file's text; GONE when there is none; "" when it cannot be read (no permission, a directory): unparseable. */
function readLockText(path: string): string | typeof GONE {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" ? GONE : "";
  }
}

/** A lock that names no process is taken for one being written until it is this old. */
const YOUNG_MS = 1_000;

/** How long a takeover lock may be held (for microseconds, normally) before it is taken for one left by a crash. */
const TAKEOVER_HOLD_MS = 1_000;
const pause = new Int32Array(new SharedArrayBuffer(4));

/** Run `fn` holding `<path>.takeover`: one process at a time removes a stale lock. Waits (blocking, briefly) for it. */
function underTakeoverLock(path: string, own: string, fn: () => void): void {
  const takeover = `${path}.takeover`;
  while (!createFrom(own, takeover)) {
    // Gone meanwhile: try again. Held (or young and unreadable): wait. Left by a process that died in there, or held
    // implausibly long by its own age: removed (or, where that is not allowed, the error thrown).
    const text = readLockText(takeover);
    if (text === GONE) continue;
    const holder = lockHolder(text);
    if ((holder === undefined || holder.alive) && ageMs(takeover) <= TAKEOVER_HOLD_MS) Atomics.wait(pause, 0, 0, 1);
    else removeIfThere(takeover);
  }
  try {
    fn();
  } finally {
    removeIfThere(takeover);
  }
}
