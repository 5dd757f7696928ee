import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DirWatcher } from "../../../src/collector/tail/dir-watcher.js";
import { waitFor } from "../../helpers/wait-for.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

describe("DirWatcher", () => {
  it("forgets a directory that refused a watch once it is no longer wanted, and watches it when it is wanted again", async () => {
    const root = mkdtempSync(join(tmpdir(), "cla-dirwatch-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const dir = join(root, "2026-11-29");
    const events: string[] = [];
    const w = new DirWatcher((e) => events.push(e));
    cleanups.push(() => w.close());
    w.sync([dir]); // does not exist yet: the watch is refused, and not retried while it stays wanted
    mkdirSync(dir);
    w.sync([dir]);
    writeFileSync(join(dir, "before.log"), "x\n");
    w.sync([]); // no longer followed: its refusal is forgotten
    w.sync([dir]);
    writeFileSync(join(dir, "after.log"), "x\n");
    await waitFor(() => events.length > 0, { timeout: 10_000, message: "no change event from the directory watched again" });
    expect(events.every((e) => e === "rename" || e === "change")).toBe(true);
  });
});
