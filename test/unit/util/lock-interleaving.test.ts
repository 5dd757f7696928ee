// One interleaving of two processes taking over the same stale lock, played out in one process: reads of the lock
// file act out what the other process does just before and just after them. (The racing processes of lock.test.ts
// meet such windows only by chance.)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it, vi } from "vitest";

/** Around each readFileSync: what the other process does just before and just after it. */
const around: { before?: (path: string) => void; after?: (path: string) => void } = {};
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const readFileSync = ((path: string, ...rest: unknown[]) => {
    around.before?.(String(path));
    try {
      return (fs.readFileSync as (...a: unknown[]) => unknown)(path, ...rest);
    } finally {
      around.after?.(String(path));
    }
  }) as typeof fs.readFileSync;
  return { ...fs, readFileSync, default: { ...fs, readFileSync } };
});
const { lockText, takeLock } = await import("../../../src/util/lock.js");
const fs = await vi.importActual<typeof import("node:fs")>("node:fs");

const dirs: string[] = [];
afterEach(() => {
  around.before = around.after = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it("a stale lock the other process removes and replaces while we look again is left to it: one holder", () => {
  const dir = mkdtempSync(join(tmpdir(), "cla-lock-il-"));
  dirs.push(dir);
  const path = join(dir, "x.lock");
  fs.writeFileSync(path, "999999 1\n"); // left by a process that is gone
  let reads = 0;
  // Our first look finds it stale. Our second (under the takeover lock) comes just after the other process, which
  // got there first, removed it; the other links its own lock right after our read found nothing.
  around.before = (p) => {
    if (p === path && ++reads === 2) fs.unlinkSync(path);
  };
  around.after = (p) => {
    if (p === path && reads === 2 && !fs.existsSync(path)) fs.writeFileSync(path, lockText(process.ppid));
  };
  expect(takeLock(path)).toMatchObject({ pid: process.ppid, alive: true });
  expect(fs.readFileSync(path, "utf8")).toBe(lockText(process.ppid));
  expect(reads).toBeGreaterThanOrEqual(3);
});

it("a lock that names no process yet and is young is being written (open, then write): it is waited for, not taken", () => {
  const dir = mkdtempSync(join(tmpdir(), "cla-lock-il-"));
  dirs.push(dir);
  const path = join(dir, "x.lock");
  fs.writeFileSync(path, ""); // the other process has created it and not written its pid yet
  let reads = 0;
  around.after = (p) => {
    if (p === path && ++reads === 3) fs.writeFileSync(path, lockText(process.ppid));
  };
  expect(takeLock(path)).toMatchObject({ pid: process.ppid, alive: true });
  expect(fs.readFileSync(path, "utf8")).toBe(lockText(process.ppid));
});

it("a lock path it cannot read (a directory) is not waited on for ever: once old, removing it fails and says why", () => {
  const dir = mkdtempSync(join(tmpdir(), "cla-lock-il-"));
  dirs.push(dir);
  const path = join(dir, "x.lock");
  fs.mkdirSync(path);
  expect(() => takeLock(path)).toThrow(/EISDIR|EPERM|illegal operation on a directory|operation not permitted/);
  expect(fs.readdirSync(dir).sort()).toEqual(["x.lock"]);
});
