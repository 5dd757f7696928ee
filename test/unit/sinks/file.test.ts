// FileSink against real files in a temp dir: exact NDJSON, permissions, rotation, and failures that never duplicate lines.
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, readlink, rename, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FileSink } from "../../../src/sinks/file.js";
import { createBatch } from "../../../src/testing/create-batch.js";
import { InvalidOptionError, SinkError } from "../../../src/errors.js";
import { Outcome, type RecordOutcome } from "../../../src/sinks/sink.js";
import { rejectionOf } from "../../helpers/rejection.js";
import { waitFor } from "../../helpers/wait-for.js";

const run = promisify(execFile);
const ctx = () => ({ signal: new AbortController().signal });
const TS = "2024-05-01T10:00:00.000Z";
const recs = (from: number, n: number, pad = 0) =>
  Array.from({ length: n }, (_, i) => ({ "@timestamp": TS, message: `m${from + i}${"x".repeat(pad)}`, seq: from + i }));
const batchOf = (from: number, n: number, pad = 0) => createBatch(recs(from, n, pad));


async function readLines(path: string): Promise<unknown[]> {
  const text = await readFile(path, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text.slice(0, -1).split("\n").map((l) => JSON.parse(l) as unknown);
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cla-file-sink-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("FileSink writing", () => {
  it("appends NDJSON that reads back equal, in order, across sends and an existing file", async () => {
    const path = join(dir, "out.ndjson");
    await writeFile(path, '{"message":"kept from before"}\n');
    const sink = new FileSink({ name: "file", path });
    const b1 = batchOf(0, 3);
    const b2 = batchOf(3, 2);
    expect(await sink.send(b1, ctx())).toEqual({ status: "delivered" });
    expect(await sink.send(b2, ctx())).toEqual({ status: "delivered" });
    await sink.close();
    const lines = await readLines(path);
    expect(lines).toEqual([{ message: "kept from before" }, ...recs(0, 5)]);
    // Byte-for-byte the canonical JSON the engine serialized.
    expect(await readFile(path, "utf8")).toBe('{"message":"kept from before"}\n' + [...b1.json, ...b2.json].join("\n") + "\n");
    expect(sink.metrics()).toMatchObject({ sends: 2, records: 5, bytes: b1.bytes + b2.bytes + 5, write_errors: 0 });
  });

  it("creates the file with mode 0600 and missing parents with 0700", async () => {
    const path = join(dir, "a", "b", "dlq.ndjson");
    const sink = new FileSink({ name: "dlq", path });
    await sink.open();
    await sink.send(batchOf(0, 1), ctx());
    await sink.close();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "a"))).mode & 0o777).toBe(0o700);
    expect(await readLines(path)).toEqual(recs(0, 1));
  });

  it("honours a custom mode", async () => {
    const path = join(dir, "shared.ndjson");
    const sink = new FileSink({ name: "f", path, mode: 0o640 });
    await sink.send(batchOf(0, 1), ctx());
    await sink.close();
    expect((await stat(path)).mode & 0o777).toBe(0o640);
  });

  it("keeps concurrent batches whole and in call order", async () => {
    const path = join(dir, "out.ndjson");
    const sink = new FileSink({ name: "f", path, fsync: "batch" });
    const sends = Array.from({ length: 20 }, (_, i) => sink.send(batchOf(i * 50, 50, 20), ctx()));
    const results = await Promise.all(sends);
    expect(results.every((r) => (r as RecordOutcome).status === "delivered")).toBe(true);
    await sink.close();
    expect((await readLines(path)).map((r) => (r as { seq: number }).seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(sink.metrics().fsyncs).toBeGreaterThanOrEqual(20);
  });

  it("close() is idempotent; a send after close() is refused (retry) and opens nothing, until open()", async () => {
    const path = join(dir, "out.ndjson");
    const sink = new FileSink({ name: "f", path });
    await sink.send(batchOf(0, 1), ctx());
    await sink.close();
    await sink.close();
    expect(await sink.send(batchOf(1, 1), ctx())).toMatchObject({ status: "retry", reason: "closed", error: { code: "ERR_SINK_SEND" } });
    expect(await readLines(path)).toEqual(recs(0, 1));
    await sink.open();
    await sink.send(batchOf(1, 1), ctx());
    await sink.close();
    expect(await readLines(path)).toEqual(recs(0, 2));
  });

  it("a send whose signal aborts while it waits for an earlier write writes nothing", async () => {
    const path = join(dir, "out.ndjson");
    const sink = new FileSink({ name: "f", path });
    const first = sink.send(batchOf(0, 1), ctx());
    const controller = new AbortController();
    const second = sink.send(batchOf(1, 1), { signal: controller.signal });
    controller.abort();
    await expect(second).rejects.toBeInstanceOf(SinkError);
    await expect(second).rejects.toThrow(/send aborted/);
    expect(await first).toEqual({ status: "delivered" });
    expect(await sink.send(batchOf(2, 1), ctx())).toEqual({ status: "delivered" });
    await sink.close();
    expect((await readLines(path)).map((r) => (r as { seq: number }).seq)).toEqual([0, 2]);
  });
});

describe("FileSink when its file goes away", () => {
  it("a file deleted with its directory, or renamed away, is recreated at the path for the next batch", async () => {
    const path = join(dir, "logs", "out.ndjson");
    const sink = new FileSink({ name: "f", path });
    expect(await sink.send(batchOf(0, 2), ctx())).toEqual(Outcome.delivered);
    await rm(join(dir, "logs"), { recursive: true });
    expect(await sink.send(batchOf(2, 2), ctx())).toEqual(Outcome.delivered);
    expect((await readLines(path)).map((r) => (r as { seq: number }).seq)).toEqual([2, 3]);
    // A rename rotation by someone else: the old lines stay in the renamed file, new ones go to the path.
    await rename(path, `${path}.old`);
    expect(await sink.send(batchOf(4, 1), ctx())).toEqual(Outcome.delivered);
    await sink.close();
    expect((await readLines(`${path}.old`)).map((r) => (r as { seq: number }).seq)).toEqual([2, 3]);
    expect((await readLines(path)).map((r) => (r as { seq: number }).seq)).toEqual([4]);
    expect(sink.metrics()).toMatchObject({ reopens: 2, records: 5, write_errors: 0 });
  });

  it("an idle file is let go after 30 s without a batch: one deleted meanwhile frees its space, and the next batch opens the path", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const path = join(dir, "dead-letters.ndjson");
      const sink = new FileSink({ name: "f", path });
      expect(await sink.send(batchOf(0, 1), ctx())).toEqual(Outcome.delivered);
      await rm(path);
      // Held open, a deleted file keeps its blocks: the descriptor shows it as "(deleted)".
      const heldDeleted = async (): Promise<boolean> => {
        for (const fd of await readdir("/proc/self/fd")) {
          const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
          if (target === `${path} (deleted)`) return true;
        }
        return false;
      };
      expect(await heldDeleted()).toBe(true);
      vi.advanceTimersByTime(29_000);
      expect(await heldDeleted()).toBe(true);
      vi.advanceTimersByTime(1_000);
      await waitFor(async () => !(await heldDeleted()), { message: "the idle, deleted file let go" });
      expect(await sink.send(batchOf(1, 1), ctx())).toEqual(Outcome.delivered);
      expect((await readLines(path)).map((r) => (r as { seq: number }).seq)).toEqual([1]);
      await sink.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("FileSink rotation", () => {
  it("rotates before a batch would pass maxBytes and keeps maxFiles rotated files", async () => {
    const path = join(dir, "app.ndjson");
    const sink = new FileSink({ name: "f", path, rotate: { maxBytes: 1000, maxFiles: 2 } });
    // Each batch: 4 records of ~100 bytes → ~400 bytes, so two batches per file.
    for (let b = 0; b < 10; b++) await sink.send(batchOf(b * 4, 4, 40), ctx());
    await sink.close();
    expect((await readdir(dir)).sort()).toEqual(["app.ndjson", "app.ndjson.1", "app.ndjson.2"]);
    const seqs = async (p: string) => (await readLines(p)).map((r) => (r as { seq: number }).seq);
    const newest = await seqs(path);
    const older = await seqs(`${path}.1`);
    const oldest = await seqs(`${path}.2`);
    // Ten batches, two per file: files hold batches 8-9, 6-7, 4-5; batches 0-3 were rotated away.
    expect(newest).toEqual(Array.from({ length: 8 }, (_, i) => 32 + i));
    expect(older).toEqual(Array.from({ length: 8 }, (_, i) => 24 + i));
    expect(oldest).toEqual(Array.from({ length: 8 }, (_, i) => 16 + i));
    for (const p of [path, `${path}.1`, `${path}.2`]) expect((await stat(p)).size).toBeLessThanOrEqual(1000);
    expect(sink.metrics().rotations).toBe(4);
  });

  it("puts a batch larger than maxBytes whole into its own file", async () => {
    const path = join(dir, "app.ndjson");
    const sink = new FileSink({ name: "f", path, rotate: { maxBytes: 200, maxFiles: 3 } });
    await sink.send(batchOf(0, 1), ctx());
    await sink.send(batchOf(1, 10, 50), ctx());
    await sink.close();
    expect((await readLines(`${path}.1`)).length).toBe(1);
    expect((await readLines(path)).length).toBe(10);
  });
});

describe("FileSink failures", () => {
  it("answers retry (no crash) when the path is a directory, and open() fails with ERR_SINK_OPEN", async () => {
    const path = join(dir, "is-a-dir");
    await mkdir(path);
    const sink = new FileSink({ name: "f", path });
    const result = (await sink.send(batchOf(0, 2), ctx())) as Extract<RecordOutcome, { status: "retry" }>;
    expect(result.status).toBe("retry");
    expect(result.reason).toBe("EISDIR");
    expect(result.error).toBeInstanceOf(SinkError);
    expect((result.error as Error).message).toContain('FileSink "f": cannot write');
    const openError = await rejectionOf<SinkError>(sink.open());
    expect(openError).toBeInstanceOf(SinkError);
    expect(openError.code).toBe("ERR_SINK_OPEN");
    expect(sink.metrics()).toMatchObject({ write_errors: 1, records: 0 });
    await sink.close();
  });

  it("answers retry with ENOTDIR when a parent is a file, then delivers once the path is fixed", async () => {
    const parent = join(dir, "parent");
    await writeFile(parent, "i am a file");
    const sink = new FileSink({ name: "f", path: join(parent, "out.ndjson") });
    expect(await sink.send(batchOf(0, 1), ctx())).toMatchObject({ status: "retry", reason: "ENOTDIR" });
    await rm(parent);
    expect(await sink.send(batchOf(0, 1), ctx())).toEqual({ status: "delivered" });
    await sink.close();
    expect(await readLines(join(parent, "out.ndjson"))).toEqual(recs(0, 1));
  });

  it("undoes a partly written batch (file size limit → EFBIG) so the retry cannot duplicate lines", async () => {
    // A real partial write: the child runs under `ulimit -f`, so the kernel writes up to the limit and then fails.
    const out = join(dir, "limited.ndjson");
    const script = join(dir, "limited.mjs");
    await writeFile(
      script,
      `const { FileSink } = await import(${JSON.stringify(pathToFileURL(fileURLToPath(new URL("../../../src/sinks/file.ts", import.meta.url))).href)});
const { createBatch } = await import(${JSON.stringify(pathToFileURL(fileURLToPath(new URL("../../../src/testing/create-batch.ts", import.meta.url))).href)});
const rec = (i, n) => ({ "@timestamp": "${TS}", message: "m" + i + "x".repeat(n), seq: i });
const sink = new FileSink({ name: "f", path: ${JSON.stringify(out)}, fsync: "never" });
const signal = new AbortController().signal;
const first = await sink.send(createBatch([rec(0, 300)]), { signal });
const sizeAfterFirst = (await import("node:fs")).statSync(${JSON.stringify(out)}).size;
const big = await sink.send(createBatch([rec(1, 600), rec(2, 600), rec(3, 600)]), { signal });
const again = await sink.send(createBatch([rec(1, 600), rec(2, 600), rec(3, 600)]), { signal });
await sink.close();
process.stdout.write(JSON.stringify({ first, sizeAfterFirst, big: { status: big.status, reason: big.reason }, again: again.status }));
`,
    );
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    // 2 blocks of 512 bytes (sh) = 1024 bytes: the first batch fits, the second crosses the limit halfway.
    const { stdout } = await run("sh", ["-c", `ulimit -f 2 && exec "$0" --import "$1" "$2"`, process.execPath, tsx, script], {
      timeout: 30_000,
    });
    const report = JSON.parse(stdout) as { first: unknown; sizeAfterFirst: number; big: { status: string; reason: string }; again: string };
    expect(report.first).toEqual({ status: "delivered" });
    expect(report.big).toEqual({ status: "retry", reason: "EFBIG" });
    expect(report.again).toBe("retry");
    // Nothing of the failed batch is left: not a partial line, not a whole one.
    expect((await stat(out)).size).toBe(report.sizeAfterFirst);
    expect((await readLines(out)).map((r) => (r as { seq: number }).seq)).toEqual([0]);
  });
});

describe("FileSink options", () => {
  it("rejects bad options with what was expected and what arrived", () => {
    const path = join(dir, "x.ndjson");
    expect(() => new FileSink({ name: "f", path: "" })).toThrow(InvalidOptionError);
    expect(() => new FileSink({ name: "f", path: 42 as never })).toThrow(
      "Expected `path` to be a non-empty path string or a file: URL, got `42` (number)",
    );
    expect(() => new FileSink({ name: "f", path, fsync: "always" as never })).toThrow(
      'Expected `fsync` to be one of "close", "batch", "never", got `"always"` (string)',
    );
    expect(() => new FileSink({ name: "f", path, mode: -1 })).toThrow("Expected `mode` to be a file mode between 0 and 0o7777, got `-1` (number)");
    expect(() => new FileSink({ name: "f", path, rotate: { maxBytes: 0 } })).toThrow(
      "Expected `rotate.maxBytes` to be a positive integer, got `0` (number)",
    );
    expect(() => new FileSink({ name: "f", path, rotate: {} as never })).toThrow("Expected `rotate.maxBytes` to be a positive integer");
    expect(() => new FileSink({ name: "f", path, rotate: { maxBytes: 10, maxFiles: 0 } })).toThrow(InvalidOptionError);
  });

  it("accepts a file: URL and resolves relative paths once", () => {
    const url = pathToFileURL(join(dir, "u.ndjson"));
    expect(new FileSink({ name: "f", path: url }).path).toBe(join(dir, "u.ndjson"));
    expect(new FileSink({ name: "f", path: "rel.ndjson" }).path).toBe(join(process.cwd(), "rel.ndjson"));
  });
});
