// Lock files under contention: processes that race for one lock (every worker of a cluster starting at once, or
// restarted together after a crash left a stale lock) must end with exactly one holder.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lockText, takeLock } from "../../../src/util/lock.js";

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const racer = join(import.meta.dirname, "../../fixtures/lock-racer.ts");
const RACERS = 6;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** RACERS processes, loaded once; `round(path)` has them all take `path` at the same moment and says what each got. */
async function racers() {
  const children = Array.from({ length: RACERS }, () => spawn(process.execPath, ["--import", tsxLoader, racer], { stdio: ["pipe", "pipe", "inherit"] }));
  const readers = children.map((child) => {
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return async (): Promise<string> => {
      const next = await lines.next();
      if (next.done === true) throw new Error(`racer ${child.pid} ended before its next line`);
      return next.value;
    };
  });
  expect(await Promise.all(readers.map((read) => read()))).toEqual(children.map(() => "ready"));
  return {
    async round(path: string): Promise<string[]> {
      const at = Date.now() + 100;
      for (const child of children) child.stdin.write(`${path} ${at}\n`);
      return Promise.all(readers.map((read) => read()));
    },
    async close(): Promise<void> {
      await Promise.all(children.map((child) => new Promise((resolve) => (child.once("exit", resolve), child.stdin.end()))));
    },
  };
}

describe("takeLock", () => {
  it.each([
    ["no lock yet", false],
    ["a stale lock left by a process that is gone", true],
  ])("processes racing for it, %s: exactly one takes it, the others name it as holder", async (_what, stale) => {
    const race = await racers();
    try {
      for (let round = 0; round < 30; round++) {
        const path = join(dir, `r${round}.lock`);
        if (stale) writeFileSync(path, "999999 1\n");
        const said = await race.round(path);
        expect(said.filter((s) => s === "won"), `round ${round}: ${said.join(", ")}`).toHaveLength(1);
        expect(new Set(said.filter((s) => s !== "won")).size, `round ${round}: every loser names the one holder`).toBe(1);
      }
    } finally {
      await race.close();
    }
    // Nothing of the contenders' own files is left behind.
    expect(readdirSync(dir).filter((f) => !/^r\d+\.lock$/.test(f))).toEqual([]);
  }, 60_000);

  it("a lock of a live process is kept; one of this process is taken over only when takeOver says so; a stale one is taken", () => {
    const path = join(dir, "x.lock");
    writeFileSync(path, lockText(process.ppid));
    expect(takeLock(path)).toMatchObject({ pid: process.ppid, alive: true });
    writeFileSync(path, lockText(process.pid));
    expect(takeLock(path)).toMatchObject({ pid: process.pid });
    expect(takeLock(path, (h) => h.pid === process.pid)).toBeUndefined();
    writeFileSync(path, "999999 1\n");
    expect(takeLock(path)).toBeUndefined();
    expect(readdirSync(dir)).toEqual(["x.lock"]);
  });
});
