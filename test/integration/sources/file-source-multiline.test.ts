// FileSource with multiline joining across a truncation (copytruncate, `: > app.log`): real files, a real collector
// child. The truncated content's file key gets no more lines, so the event its joiner still holds must be shipped
// then — not held until stop() (or lost when the collector is killed) — and the new content is joined on its own.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, CommandSource, FileSource, MemorySink } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

let dir: string;
let agg: Aggregator | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-file-ml-"));
});
afterEach(async () => {
  await agg?.stop({ timeoutMs: 10_000 });
  agg = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("FileSource multiline across a truncation", () => {
  it("ships the event pending in the joiner when the file is truncated, while running; new content joins from 0", async () => {
    const file = join(dir, "app.log");
    const a = "2024-01-01 A plain\n";
    const b = "2024-01-01 B boom\n  at one\n  at two\n";
    writeFileSync(file, a + b);
    const mem = new MemorySink({ name: "mem" });
    // timeoutMs 0: no idle timer, so only a next start line, a retired file key or stop() can emit B.
    agg = new Aggregator({ checkpointDir: join(dir, "cp"), batch: { maxWaitMs: 10 } })
      .addSource(
        new FileSource({
          name: "app",
          paths: [file],
          parser: "plain",
          multiline: { startPattern: "^\\d{4}-\\d{2}-\\d{2} ", timeoutMs: 0 },
          pollIntervalMs: 20,
          checkpointIntervalMs: 10,
        }),
      )
      .addSink(mem);
    await agg.start();
    const metrics = () => agg!.metrics().sources.app!;

    // A is closed by B's start line; B's lines are all read (collector reports) and B stays pending in the joiner.
    await mem.waitForCount(1, { timeout: 10_000 });
    await waitFor(() => metrics().linesRead >= 4, { timeout: 10_000, message: () => `all 4 lines read, got ${metrics().linesRead}` });
    expect(mem.count).toBe(1);

    // Truncate under the running source: B must be shipped now, without a following line and without stop().
    truncateSync(file, 0);
    await waitFor(() => mem.count >= 2, {
      timeout: 10_000,
      message: () => `the event pending before the truncation shipped while running; got ${mem.count} records, truncations ${metrics().collector.truncations}`,
    });
    expect(mem.records[1]).toMatchObject({ message: "2024-01-01 B boom\n  at one\n  at two", log: { file: { path: file }, offset: Buffer.byteLength(a) } });

    // New content after the truncation: joined from offset 0 by a fresh joiner; D stays pending until stop().
    const c = "2024-01-02 C after\n  at three\n";
    const d = "2024-01-02 D last\n";
    appendFileSync(file, c + d);
    await mem.waitForCount(3, { timeout: 10_000 });
    expect(mem.records[2]).toMatchObject({ message: "2024-01-02 C after\n  at three", log: { offset: 0 } });
    // C's ack moves the new content's checkpoint; the pre-truncation key is gone and B's late ack did not revive it.
    const cpFile = join(dir, "cp", "app.json");
    const checkpoint = (): Array<{ offset: number }> => {
      try {
        return (JSON.parse(readFileSync(cpFile, "utf8")) as { files: Array<{ offset: number }> }).files;
      } catch {
        return [];
      }
    };
    await waitFor(() => checkpoint().length === 1 && checkpoint()[0]!.offset === Buffer.byteLength(c), {
      timeout: 10_000,
      message: () => `one checkpoint entry at ${Buffer.byteLength(c)}, got ${JSON.stringify(checkpoint())}`,
    });
    expect(mem.count).toBe(3);

    const report = await agg.stop({ timeoutMs: 10_000 });
    agg = undefined;
    expect(mem.records.map((r) => r.message)).toEqual([
      "2024-01-01 A plain",
      "2024-01-01 B boom\n  at one\n  at two",
      "2024-01-02 C after\n  at three",
      "2024-01-02 D last",
    ]);
    expect(mem.records[3]!.log!.offset).toBe(Buffer.byteLength(c));
    expect(report.sources.app).toMatchObject({ kind: "file", emitted: 4, linesRead: 7 });
    expect(report.sources.app!.collector.truncations).toBe(1);
  });
});

describe("FileSource multiline patterns", () => {
  it("a RegExp pattern (with its flags) and a string pattern with `flags` reach the collector", async () => {
    const file = join(dir, "app.log");
    writeFileSync(file, "ERROR first\n  detail 1\nerror second\n  detail 2\nError third\n");
    const run = async (multiline: ConstructorParameters<typeof FileSource>[0]["multiline"]): Promise<string[]> => {
      const mem = new MemorySink({ name: "mem" });
      agg = new Aggregator({ batch: { maxWaitMs: 10 } })
        .addSource(new FileSource({ name: "app", paths: [file], parser: "plain", multiline, pollIntervalMs: 20 }))
        .addSink(mem);
      await agg.start();
      await mem.waitForCount(2, { timeout: 10_000 });
      await agg.stop({ timeoutMs: 10_000 });
      agg = undefined;
      return mem.messages();
    };
    const expected = ["ERROR first\n  detail 1", "error second\n  detail 2", "Error third"];
    expect(await run({ startPattern: /^error /i, timeoutMs: 0 })).toEqual(expected);
    expect(await run({ startPattern: "^error ", flags: "i", timeoutMs: 0 })).toEqual(expected);
  });
});

describe("multiline events cut at maxLines", () => {
  const trace = "2024-01-15 10:00:00 ERROR x\njava.lang.IllegalStateException: a\n\tat a.b(c.java:1)\n\tat a.b(c.java:2)\n\tat a.b(c.java:3)\n\tat a.b(c.java:4)\n2024-01-15 10:00:01 INFO next\n";

  it.each(["file", "command"] as const)("are flagged log.flags: [\"truncated\"] and counted (multilineTruncated): %s source", async (kind) => {
    const file = join(dir, "app.log");
    writeFileSync(file, trace);
    const mem = new MemorySink({ name: "mem" });
    const multiline = { preset: "java" as const, maxLines: 3, timeoutMs: 50 };
    const source =
      kind === "file"
        ? new FileSource({ name: "app", paths: [file], parser: "plain", multiline, pollIntervalMs: 20 })
        : new CommandSource({ name: "app", command: "cat", args: [file], parser: "plain", multiline, restartOnExit: "never" });
    agg = new Aggregator({ batch: { maxWaitMs: 10 } }).addSource(source).addSink(mem);
    await agg.start();
    await mem.waitForCount(3, { timeoutMs: 10_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    agg = undefined;
    const [cut, rest, next] = mem.records;
    expect(cut).toMatchObject({ message: "2024-01-15 10:00:00 ERROR x\njava.lang.IllegalStateException: a\n\tat a.b(c.java:1)", log: { flags: ["truncated"], level: "error" } });
    expect(rest!.message).toBe("\tat a.b(c.java:2)\n\tat a.b(c.java:3)\n\tat a.b(c.java:4)");
    expect(rest!.log?.flags).toBeUndefined();
    expect(next!.log?.flags).toBeUndefined();
    expect(report.sources.app!.collector.multilineTruncated).toBe(1);
  });
});

describe("lines longer than maxLineBytes", () => {
  it.each(["file", "command"] as const)('are split into pieces that all carry log.flags: ["split"], the last included: %s source', async (kind) => {
    const file = join(dir, "long.log");
    const long = `{"level":"error","msg":"${"x".repeat(5_000)}"}`;
    writeFileSync(file, `{"level":"info","msg":"before"}\n${long}\n{"level":"info","msg":"after"}\n`);
    const mem = new MemorySink({ name: "mem" });
    const source =
      kind === "file"
        ? new FileSource({ name: "app", paths: [file], parser: "json", maxLineBytes: 2_048, pollIntervalMs: 20 })
        : new CommandSource({ name: "app", command: "cat", args: [file], parser: "json", maxLineBytes: 2_048, restartOnExit: "never" });
    agg = new Aggregator({ batch: { maxWaitMs: 10 } }).addSource(source).addSink(mem);
    await agg.start();
    await mem.waitForCount(5, { timeoutMs: 10_000 });
    await agg.stop({ timeoutMs: 10_000 });
    agg = undefined;
    const records = mem.records;
    expect(records.map((r) => r.message.length)).toEqual([6, 2_048, 2_048, long.length - 4_096, 5]);
    expect(records.map((r) => r.log?.flags)).toEqual([undefined, ["split"], ["split"], ["split"], undefined]);
    expect(records.slice(1, 4).map((r) => r.message).join("")).toBe(long);
  });
});
