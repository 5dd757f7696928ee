// Lock files that name the process using a directory or file: its pid and, where the OS tells it, its start time
// (a pid reused by a later process does not keep the lock). Used by disk queues and checkpoint files.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";

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
 * Take the lock file at `path` for this process: created exclusively, with our pid and start time. One left by a
 * process that is gone (or unreadable) is removed and taken, as is one `takeOver` accepts. Returns the live holder
 * when another keeps it. Throws what the file system threw (not EEXIST).
 */
export function takeLock(path: string, takeOver: (holder: LockHolder) => boolean = () => false): LockHolder | undefined {
  for (;;) {
    try {
      const fd = openSync(path, "wx", 0o600);
      try {
        writeSync(fd, lockText(process.pid));
      } finally {
        closeSync(fd);
      }
      return undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = lockHolder(readOr(path));
    if (holder?.alive === true && !takeOver(holder as LockHolder)) return holder as LockHolder;
    try {
      unlinkSync(path); // left by a process that is gone
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}
