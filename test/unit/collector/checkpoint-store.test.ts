// CheckpointStore: atomic 0600 writes, debounce, only acknowledged offsets, failure reporting and recovery, load, forget.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CheckpointStore, type CheckpointEntry } from "../../../src/collector/checkpoint-store.js";
import { AggregatorError, CheckpointError, InvalidOptionError } from "../../../src/errors.js";
import { lockText } from "../../../src/util/lock.js";
import { waitFor } from "../../helpers/wait-for.js";

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "cla-cp-"));
});

afterEach(async () => {
  vi.useRealTimers();
  await rm(root, { recursive: true, force: true });
});

function entry(fileKey: string, extra: Partial<CheckpointEntry> = {}) {
  return { fileKey, path: `/var/log/${fileKey}.log`, device: "2049", inode: fileKey.length.toString(), fingerprint: "abc", fingerprintBytes: 3, ...extra };
}

function onDisk(store: CheckpointStore): { version: number; source: string; files: CheckpointEntry[] } {
  return JSON.parse(readFileSync(store.file, "utf8")) as never;
}

describe("CheckpointStore", () => {
  it("writes atomically to <dir>/<source>.json with mode 0600 and leaves no temp file", async () => {
    const dir = path.join(root, "state", "nested");
    const store = new CheckpointStore({ dir, source: "nginx/access" });
    store.upsert({ ...entry("k1"), offset: 0 });
    expect(store.commit("k1", 120)).toBe(true);
    expect(await store.flush()).toBe(true);
    expect(store.file).toBe(path.join(dir, "nginx%2Faccess.json"));
    expect(statSync(store.file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["nginx%2Faccess.json"]);
    expect(onDisk(store)).toMatchObject({ version: 1, source: "nginx/access", files: [{ fileKey: "k1", offset: 120, device: "2049" }] });

    // The next write replaces the file by rename (a new inode), never rewrites it in place.
    const inode = statSync(store.file).ino;
    store.commit("k1", 200);
    await store.flush();
    expect(statSync(store.file).ino).not.toBe(inode);
    expect(onDisk(store).files[0]!.offset).toBe(200);
  });

  it("keeps a script's cursor (any JSON value) beside the files, writes it only when it changes, and loads it back", async () => {
    const store = new CheckpointStore({ dir: root, source: "poller" });
    expect(store.cursor).toBeUndefined();
    store.setCursor(JSON.stringify({ page: 7, token: "abc" }));
    expect(await store.flush()).toBe(true);
    expect(onDisk(store)).toMatchObject({ version: 1, source: "poller", files: [], cursor: { page: 7, token: "abc" } });
    const writes = store.stats().writes;
    store.setCursor(JSON.stringify({ page: 7, token: "abc" }));
    await store.flush();
    expect(store.stats().writes).toBe(writes);
    store.upsert({ ...entry("k"), offset: 3 });
    await store.close();

    const again = new CheckpointStore({ dir: root, source: "poller" });
    await again.load();
    expect(again.cursor).toEqual({ page: 7, token: "abc" });
    expect(again.get("k")?.offset).toBe(3);
    // A fresh copy each time: the caller cannot change the stored value by mutating it.
    (again.cursor as { page: number }).page = 8;
    expect(again.cursor).toEqual({ page: 7, token: "abc" });
  });

  it("a stale temp file from a crash (other mode, other content) does not leak into the result", async () => {
    const store = new CheckpointStore({ dir: root, source: "s" });
    writeFileSync(`${store.file}.tmp`, "garbage from a crashed writer", { mode: 0o644 });
    store.upsert({ ...entry("k"), offset: 5 });
    expect(await store.flush()).toBe(true);
    expect(statSync(store.file).mode & 0o777).toBe(0o600);
    expect(onDisk(store).files).toHaveLength(1);
    expect(readdirSync(root)).toEqual(["s.json"]);
  });

  it("stores only committed offsets: monotonic per key, unknown keys refused", async () => {
    const store = new CheckpointStore({ dir: root, source: "s" });
    store.upsert({ ...entry("k"), offset: 10 });
    store.commit("k", 100);
    store.commit("k", 50); // an out-of-order ack never moves the position back
    expect(store.commit("gone", 999)).toBe(false);
    await store.flush();
    expect(onDisk(store).files.map((f) => [f.fileKey, f.offset])).toEqual([["k", 100]]);
    // Updating identity/path keeps the committed offset.
    store.upsert({ ...entry("k"), path: "/var/log/k.log.1" });
    expect(store.get("k")).toMatchObject({ offset: 100, path: "/var/log/k.log.1" });
  });

  it("one inode holds one file: registering a new key for the same device+inode replaces the old entry", () => {
    const store = new CheckpointStore({ dir: root, source: "s" });
    store.upsert({ ...entry("old", { inode: "7" }), offset: 500 });
    store.upsert({ ...entry("new", { inode: "7" }), offset: 0 });
    expect(store.entries().map((e) => e.fileKey)).toEqual(["new"]);
    expect(store.findByIdentity("2049", "7")?.fileKey).toBe("new");
    expect(store.commit("old", 600)).toBe(false);
  });

  it("debounces: many commits within flushIntervalMs make one write", async () => {
    vi.useFakeTimers();
    const store = new CheckpointStore({ dir: root, source: "s", flushIntervalMs: 1000 });
    let writes = 0;
    store.on("write", () => writes++);
    store.upsert({ ...entry("k"), offset: 0 });
    for (let i = 1; i <= 50; i++) store.commit("k", i * 10);
    await vi.advanceTimersByTimeAsync(999);
    expect(writes).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await waitFor(() => writes === 1, { message: "one debounced write" });
    expect(onDisk(store).files[0]!.offset).toBe(500);
    await vi.advanceTimersByTimeAsync(5000);
    expect(writes).toBe(1); // nothing changed since: no further write
  });

  it("writes a large state less often: the whole file at most 64 KiB a second on average", async () => {
    vi.useFakeTimers();
    const store = new CheckpointStore({ dir: root, source: "s", flushIntervalMs: 250 });
    let writes = 0;
    store.on("write", () => writes++);
    for (let i = 0; i < 3000; i++) store.upsert({ ...entry(`k${i}`, { inode: String(1000 + i), path: `/var/log/pods/ns_pod-${i}_uid/app/0.log` }), offset: 0 });
    await vi.advanceTimersByTimeAsync(300);
    await waitFor(() => writes === 1, { message: "the first write" });
    const bytes = statSync(path.join(root, "s.json")).size;
    expect(bytes).toBeGreaterThan(200 * 1024);
    // One more commit, 300 ms after the first write began: written not 250 ms after that write, but once the file's
    // size allows (`due` after it).
    store.commit("k1", 10);
    const due = Math.ceil((bytes * 1000) / (64 * 1024));
    await vi.advanceTimersByTimeAsync(due - 300 - 50);
    // (Its file I/O is real: a write that started shows as its timer gone, not yet as a `write` event.)
    expect(vi.getTimerCount(), "the next write still waits").toBe(1);
    expect(writes).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(vi.getTimerCount(), "the next write began").toBe(0);
    await waitFor(() => writes === 2, { message: "the second write" });
    expect(onDisk(store).files.find((f) => f.fileKey === "k1")!.offset).toBe(10);
    await store.close();
  });

  it("a write failure (checkpointDir is a file: ENOTDIR) is reported as ERR_CHECKPOINT, keeps state and recovers", async () => {
    const blocker = path.join(root, "blocker");
    writeFileSync(blocker, "not a directory");
    const dir = path.join(blocker, "cp"); // under a file: every mkdir/open fails with ENOTDIR, even for root
    const store = new CheckpointStore({ dir, source: "s", flushIntervalMs: 10_000 });
    const errors: AggregatorError[] = [];
    store.on("error", (e) => errors.push(e));
    store.upsert({ ...entry("k"), offset: 0 });
    store.commit("k", 42);
    expect(await store.flush()).toBe(false);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(CheckpointError);
    expect(errors[0]).toBeInstanceOf(AggregatorError);
    expect(errors[0]!.code).toBe("ERR_CHECKPOINT");
    expect(errors[0]!.message).toContain("ENOTDIR");
    expect(store.lastError?.code).toBe("ERR_CHECKPOINT");
    expect(store.stats()).toMatchObject({ writeErrors: 1, dirty: true });

    store.commit("k", 84); // commits keep being accepted while the disk is broken
    rmSync(blocker);
    mkdirSync(blocker);
    expect(await store.flush()).toBe(true);
    expect(onDisk(store).files[0]!.offset).toBe(84);
    expect(store.lastError).toBeUndefined();
    expect(store.stats()).toMatchObject({ writes: 1, writeErrors: 1, dirty: false });
    await store.close();
  });

  it("a failed write leaves the previous checkpoint file intact", async () => {
    const store = new CheckpointStore({ dir: root, source: "s" });
    store.on("error", () => undefined);
    store.upsert({ ...entry("k"), offset: 0 });
    store.commit("k", 10);
    await store.flush();
    mkdirSync(`${store.file}.tmp`); // the temp path is unusable: the write fails before any rename
    store.commit("k", 20);
    expect(await store.flush()).toBe(false);
    expect(onDisk(store).files[0]!.offset).toBe(10);
  });

  it("retries a failed write on its own (backoff timer), without a new commit", async () => {
    vi.useFakeTimers();
    const blocker = path.join(root, "blocker");
    writeFileSync(blocker, "x");
    const store = new CheckpointStore({ dir: path.join(blocker, "cp"), source: "s", flushIntervalMs: 100 });
    let errors = 0;
    let writes = 0;
    store.on("error", () => errors++);
    store.on("write", () => writes++);
    store.upsert({ ...entry("k"), offset: 7 });
    await vi.advanceTimersByTimeAsync(100);
    await waitFor(() => errors === 1, { message: "the first failure" });
    rmSync(blocker);
    mkdirSync(blocker);
    await vi.advanceTimersByTimeAsync(30_000);
    await waitFor(() => writes === 1, { message: "the retried write" });
    expect(onDisk(store).files[0]!.offset).toBe(7);
  });

  it("loads what a previous store wrote; a corrupt file is moved aside, reported, and the store starts empty", async () => {
    const first = new CheckpointStore({ dir: root, source: "s" });
    first.upsert({ ...entry("k"), offset: 0 });
    first.commit("k", 33);
    await first.close();
    const second = new CheckpointStore({ dir: root, source: "s" });
    await second.load();
    expect(second.findByIdentity("2049", "1")).toMatchObject({ fileKey: "k", offset: 33 });

    writeFileSync(second.file, "{ torn");
    const third = new CheckpointStore({ dir: root, source: "s" });
    const errors: AggregatorError[] = [];
    third.on("error", (e) => errors.push(e));
    await third.load();
    expect(third.entries()).toEqual([]);
    expect(errors.map((e) => e.code)).toEqual(["ERR_CHECKPOINT"]);
    expect(readFileSync(`${third.file}.corrupt`, "utf8")).toBe("{ torn");
    // Positions were kept before: files are read from their beginning (duplicates), not started at their end (loss).
    expect(third.resumed).toBe(true);
    expect(errors[0]!.message).toContain("read again from their beginning");
  });

  it("one process per checkpoint file: a lock held by another live process is refused after a wait; a dead one's is taken over", async () => {
    // Another process holding the lock: a real one, with its pid and start time in the file as a store writes them.
    const other = spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" });
    try {
      const lockPath = path.join(root, "s.json.lock");
      writeFileSync(lockPath, lockText(other.pid!));
      let now = 0;
      // Its clock runs a second per look: the 5 s wait ends after a few tries, not 5 s of real time.
      const store = new CheckpointStore({ dir: root, source: "s", now: () => (now += 1_000) });
      const refused = await store.load().then(() => undefined, (e: unknown) => e);
      expect(refused).toBeInstanceOf(CheckpointError);
      expect((refused as CheckpointError).message).toMatch(new RegExp(`in use by process ${other.pid}: another aggregator runs a source named "s" with the same checkpointDir`));
      expect(readFileSync(lockPath, "utf8")).toBe(lockText(other.pid!)); // still theirs
      other.kill("SIGKILL");
      await new Promise((resolve) => other.once("exit", resolve));
      // Gone: its lock is taken over, and let go at close().
      const next = new CheckpointStore({ dir: root, source: "s" });
      await next.load();
      expect(readFileSync(lockPath, "utf8")).toBe(lockText(process.pid));
      await next.close();
      expect(existsSync(lockPath)).toBe(false);
    } finally {
      other.kill("SIGKILL");
    }
  });

  it('lock: "write" (a script\'s cursors) takes no lock until it writes, and then does not wait: refused, it writes nothing', async () => {
    const lockPath = path.join(root, "s.json.lock");
    const idle = new CheckpointStore({ dir: root, source: "s", lock: "write" });
    await idle.load();
    await idle.close();
    expect(existsSync(lockPath)).toBe(false); // never committed a cursor: shares nothing, locks nothing
    const other = spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" });
    try {
      writeFileSync(lockPath, lockText(other.pid!));
      const store = new CheckpointStore({ dir: root, source: "s", lock: "write" });
      const errors: CheckpointError[] = [];
      store.on("error", (e) => errors.push(e));
      await store.load(); // does not wait for the lock, nor fail
      store.setCursor(JSON.stringify({ page: 3 }));
      expect(await store.flush()).toBe(false);
      expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(new RegExp(`in use by process ${other.pid}: .*; this run's cursors are not saved`))]);
      expect(existsSync(store.file)).toBe(false);
      expect(readFileSync(lockPath, "utf8")).toBe(lockText(other.pid!));
      store.setCursor(JSON.stringify({ page: 4 }));
      expect(await store.flush()).toBe(false);
      expect(errors).toHaveLength(1); // said once
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("forgets entries of files not seen for forgetAfterMs; touched entries stay", async () => {
    let now = 1_000_000;
    const store = new CheckpointStore({ dir: root, source: "s", forgetAfterMs: 60_000, now: () => now });
    store.upsert({ ...entry("stale", { inode: "1" }), offset: 1 });
    store.upsert({ ...entry("alive", { inode: "2" }), offset: 2 });
    now += 50_000;
    store.touch("alive");
    now += 20_000; // stale: 70 s unseen; alive: 20 s
    await store.flush();
    expect(onDisk(store).files.map((f) => f.fileKey)).toEqual(["alive"]);
    expect(store.stats().forgotten).toBe(1);
  });

  it("counts unseen time from load: entries last seen long before (host down a day) survive the first write", async () => {
    let now = 10 * 86_400_000;
    const day = 86_400_000;
    writeFileSync(
      path.join(root, "s.json"),
      JSON.stringify({ version: 1, source: "s", files: [1, 2, 3].map((i) => ({ ...entry(`k${i}`, { inode: `${i}` }), offset: 100 * i, lastSeen: now - 2 * day })) }),
    );
    const store = new CheckpointStore({ dir: root, source: "s", now: () => now });
    await store.load();
    // The first scan finds k1 and writes before it reaches k2 and k3.
    store.upsert({ ...entry("k1", { inode: "1" }) });
    expect(await store.flush()).toBe(true);
    expect(onDisk(store).files.map((f) => [f.fileKey, f.offset])).toEqual([["k1", 100], ["k2", 200], ["k3", 300]]);
    expect(store.stats().forgotten).toBe(0);
    // Files this store does not see for forgetAfterMs while it runs are forgotten as before.
    now += day - 1;
    store.touch("k1");
    store.touch("k2");
    now += 2;
    store.upsert({ ...entry("k1", { inode: "1", path: "/var/log/moved.log" }) });
    await store.flush();
    expect(onDisk(store).files.map((f) => f.fileKey)).toEqual(["k1", "k2"]);
    expect(store.stats().forgotten).toBe(1);
  });

  it("a missing checkpoint file (or directory) is an empty store, not an error", async () => {
    const store = new CheckpointStore({ dir: path.join(root, "missing"), source: "s" });
    const errors: unknown[] = [];
    store.on("error", (e) => errors.push(e));
    await store.load();
    expect(errors).toEqual([]);
    expect(store.entries()).toEqual([]);
  });

  it("validates options synchronously", () => {
    expect(() => new CheckpointStore({ dir: "", source: "s" })).toThrow(InvalidOptionError);
    expect(() => new CheckpointStore({ dir: root, source: "s", flushIntervalMs: -1 })).toThrow(
      "Expected `flushIntervalMs` to be an integer between 0 and 3600000, got `-1` (number)",
    );
    expect(() => new CheckpointStore({ dir: root, source: 3 as never })).toThrow("Expected `source` to be a non-empty string, got `3` (number)");
  });
});



describe("CheckpointStore write cadence", () => {
  it("writes the first change after a quiet interval at once, then at most once per interval", async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { CheckpointStore } = await import("../../../src/collector/checkpoint-store.js");
    const { waitFor } = await import("../../helpers/wait-for.js");
    const dir = mkdtempSync(join(tmpdir(), "cla-cadence-"));
    let now = 1_000_000;
    const store = new CheckpointStore({ dir, source: "s", flushIntervalMs: 60_000, now: () => now });
    const offsetOnDisk = (): number | undefined => {
      try {
        return (JSON.parse(readFileSync(store.file, "utf8")) as { files: Array<{ offset: number }> }).files[0]?.offset;
      } catch {
        return undefined;
      }
    };
    try {
      store.upsert({ fileKey: "k", path: "/x", device: "1", inode: "2", fingerprint: "f", fingerprintBytes: 4, offset: 0 });
      // Leading edge: no 60 s wait for the first write.
      await waitFor(() => offsetOnDisk() === 0, { message: "the first write, at once" });
      store.commit("k", 10);
      now += 1_000; // well inside the interval: debounced
      await new Promise((r) => setImmediate(r));
      expect(offsetOnDisk()).toBe(0);
      expect(await store.flush()).toBe(true);
      expect(offsetOnDisk()).toBe(10);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
