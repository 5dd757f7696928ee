// FileSource `container`: Kubernetes' CRI log files and Docker's json-file logs, tailed by a real collector child.
// The runtime's wrapper comes off, lines it split are joined per stream, and a checkpoint never passes the first
// piece of a line still unfinished (so a restart reads that line whole).
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, FileSource, MemorySink, type SourceLogEvent } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

let dir: string;
let agg: Aggregator | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-container-"));
});
afterEach(async () => {
  await agg?.stop({ timeoutMs: 10_000 });
  agg = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const cri = (time: string, stream: "stdout" | "stderr", tag: "P" | "F", text: string) => `${time} ${stream} ${tag} ${text}\n`;

describe("FileSource container: \"cri\"", () => {
  it("unwraps CRI lines, joins a 40 KiB JSON line split in three pieces around another stream's line, and ships non-CRI lines whole", async () => {
    // Named as kubelet names its links under /var/log/containers: the record says which pod and container.
    const containerId = "9f".repeat(32);
    const file = join(dir, `web-5c7d9_shop_app-${containerId}.log`);
    const big = JSON.stringify({ level: 50, msg: "big", blob: "b".repeat(40_000) });
    const pieces = [big.slice(0, 16_384), big.slice(16_384, 32_768), big.slice(32_768)];
    const lines = [
      cri("2024-05-01T10:00:00.111111111Z", "stdout", "F", JSON.stringify({ level: 30, time: 1714557600999, msg: "pino says hi" })),
      cri("2024-05-01T10:00:01.222222222Z", "stdout", "P", pieces[0]!),
      cri("2024-05-01T10:00:01.300000000Z", "stderr", "F", "DeprecationWarning: something"),
      cri("2024-05-01T10:00:01.400000000Z", "stdout", "P", pieces[1]!),
      cri("2024-05-01T10:00:01.500000000Z", "stdout", "F", pieces[2]!),
      "a line some other writer put here\n",
      cri("2024-05-01T12:00:02.000000000+02:00", "stdout", "F", "plain text, runtime time"),
    ];
    writeFileSync(file, lines.join(""));
    const offsetOf = (i: number) => Buffer.byteLength(lines.slice(0, i).join(""));
    const mem = new MemorySink({ name: "mem" });
    const logs: SourceLogEvent[] = [];
    agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new FileSource({
          name: "web",
          paths: [file],
          startAt: "beginning",
          parser: "json",
          container: "cri",
          // Merged over what the path says, deeply, as into a record.
          fields: { kubernetes: { labels: { team: "payments" } } },
          pollIntervalMs: 20,
        }),
      )
      .addSink(mem);
    agg.on("source:log", (e) => logs.push(e));
    await agg.start();
    await mem.waitForCount(5, { timeout: 10_000 });
    await waitFor(() => logs.some((l) => l.level === "warn"), { timeout: 10_000, message: () => `a warning about the non-CRI line, got ${JSON.stringify(logs)}` });
    const report = await agg.stop({ timeoutMs: 10_000 });
    agg = undefined;

    const records = mem.records;
    expect(records.map((r) => [r.message, r["stream"], r.log?.level, r["@timestamp"], r.log?.offset])).toEqual([
      // The line's own time wins over the runtime's.
      ["pino says hi", "stdout", "info", "2024-05-01T10:00:00.999Z", offsetOf(0)],
      // stderr without a level of its own: warn, as CommandSource's; its time is the runtime's.
      ["DeprecationWarning: something", "stderr", "warn", "2024-05-01T10:00:01.300Z", offsetOf(2)],
      // Joined, parsed as one JSON line, at its first piece's offset.
      ["big", "stdout", "error", "2024-05-01T10:00:01.222Z", offsetOf(1)],
      // Not CRI: shipped as it is, no stream, the time it was read.
      ["a line some other writer put here", undefined, undefined, expect.any(String), offsetOf(5)],
      ["plain text, runtime time", "stdout", undefined, "2024-05-01T10:00:02.000Z", offsetOf(6)],
    ]);
    expect(records[2]!["blob"]).toBe("b".repeat(40_000));
    for (const r of records) {
      expect(r["kubernetes"]).toEqual({ pod: { name: "web-5c7d9" }, namespace: "shop", container: { name: "app" }, labels: { team: "payments" } });
      expect(r["container"]).toEqual({ id: containerId });
    }
    expect(records[2]!.log?.flags).toBeUndefined();
    expect(report.sources.web!.collector).toMatchObject({ containerJoinedLines: 1, containerInvalidLines: 1 });
    expect(report.sources.web).toMatchObject({ linesRead: lines.length, parseErrors: 3 });
    const warnings = logs.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain("not in the CRI format");
  });

  it("a checkpoint stops at an unfinished line's first piece: the next run reads that line whole (the other stream's line again)", async () => {
    const file = join(dir, "app.log");
    const head = cri("2024-05-01T10:00:00Z", "stdout", "P", "head of a long line, ");
    const err = cri("2024-05-01T10:00:01Z", "stderr", "F", "an error line");
    writeFileSync(file, head + err);
    const checkpointDir = join(dir, "cp");
    const source = () => new FileSource({ name: "app", paths: [file], startAt: "beginning", container: "cri", pollIntervalMs: 20, checkpointIntervalMs: 10 });

    const first = new MemorySink({ name: "mem" });
    agg = new Aggregator({ checkpointDir, batch: { maxWaitMs: 10 } }).addSource(source()).addSink(first);
    await agg.start();
    await first.waitForCount(1, { timeout: 10_000 });
    await agg.stop({ timeoutMs: 10_000 });
    agg = undefined;
    expect(first.messages()).toEqual(["an error line"]);
    // Acked, but committed no further than where the unfinished stdout line starts.
    const committed = (JSON.parse(readFileSync(join(checkpointDir, "app.json"), "utf8")) as { files: Array<{ offset: number }> }).files;
    expect(committed.map((f) => f.offset)).toEqual([0]);

    appendFileSync(file, cri("2024-05-01T10:00:02Z", "stdout", "F", "and its tail"));
    const second = new MemorySink({ name: "mem" });
    agg = new Aggregator({ checkpointDir, batch: { maxWaitMs: 10 } }).addSource(source()).addSink(second);
    await agg.start();
    await second.waitForCount(2, { timeout: 10_000 });
    await agg.stop({ timeoutMs: 10_000 });
    agg = undefined;
    // At least once: the stderr line comes again; the stdout line comes whole, not as its tail alone.
    expect(second.messages()).toEqual(["an error line", "head of a long line, and its tail"]);
    expect(second.records[1]!.log?.offset).toBe(0);
  });
});

describe("FileSource container: a small maxLineBytes", () => {
  it("bounds the container's joined lines, not the runtime's raw lines: no wrapper text in a message", async () => {
    const file = join(dir, "app.log");
    const text = "z".repeat(40_000);
    const pieces = [text.slice(0, 16_384), text.slice(16_384, 32_768), text.slice(32_768)];
    writeFileSync(
      file,
      cri("2024-05-01T10:00:00Z", "stdout", "P", pieces[0]!) + cri("2024-05-01T10:00:00Z", "stdout", "P", pieces[1]!) + cri("2024-05-01T10:00:00Z", "stdout", "F", pieces[2]!),
    );
    const mem = new MemorySink({ name: "mem" });
    agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new FileSource({ name: "app", paths: [file], startAt: "beginning", container: "cri", maxLineBytes: 8_192, pollIntervalMs: 20 }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(5, { timeout: 10_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    agg = undefined;
    expect(mem.messages().join("")).toBe(text);
    expect(mem.records.every((r) => (r.log?.flags as string[] | undefined)?.includes("split") === true && (r.message as string).length <= 8_192)).toBe(true);
    expect(report.sources.app!.collector).toMatchObject({ containerInvalidLines: 0 });
  });
});

describe("FileSource container: \"docker\"", () => {
  it("joins a Node stack trace on stderr with multiline while stdout lines go on between its lines", async () => {
    const file = join(dir, "abc-json.log");
    const line = (log: string, stream: "stdout" | "stderr", ms: number) =>
      `${JSON.stringify({ log, stream, time: `2024-05-01T10:00:00.${String(ms).padStart(3, "0")}123456Z` })}\n`;
    writeFileSync(
      file,
      [
        line("Error: boom\n", "stderr", 1),
        line("request 1 done\n", "stdout", 2),
        line("    at handler (/app/server.js:10:5)\n", "stderr", 3),
        line("request 2 done\n", "stdout", 4),
        line("    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n", "stderr", 5),
        line("Error: second\n", "stderr", 6),
        line("request 3 done\n", "stdout", 7),
      ].join(""),
    );
    const mem = new MemorySink({ name: "mem" });
    agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new FileSource({
          name: "api",
          paths: [file],
          startAt: "beginning",
          container: "docker",
          multiline: { continuePattern: "^\\s+at ", timeoutMs: 0 },
          pollIntervalMs: 20,
        }),
      )
      .addSink(mem);
    await agg.start();
    // Each stream's last event waits for its next line (no idle timer): stop() ships them.
    await mem.waitForCount(3, { timeout: 10_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    agg = undefined;
    const got = mem.records.map((r) => [r["stream"], r.message, r["@timestamp"]]);
    expect(got).toEqual(
      expect.arrayContaining([
        ["stderr", "Error: boom\n    at handler (/app/server.js:10:5)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)", "2024-05-01T10:00:00.001Z"],
        ["stderr", "Error: second", "2024-05-01T10:00:00.006Z"],
        ["stdout", "request 1 done", "2024-05-01T10:00:00.002Z"],
        ["stdout", "request 2 done", "2024-05-01T10:00:00.004Z"],
        ["stdout", "request 3 done", "2024-05-01T10:00:00.007Z"],
      ]),
    );
    expect(got).toHaveLength(5);
    expect(report.sources.api!.collector).toMatchObject({ containerInvalidLines: 0, containerJoinedLines: 0 });
  });

  it("ships Docker's last line without its newline after partialLineTimeoutMs, flagged, while the source runs", async () => {
    const file = join(dir, "done-json.log");
    writeFileSync(
      file,
      `${JSON.stringify({ log: "working\n", stream: "stdout", time: "2024-05-01T10:00:00Z" })}\n` +
        `${JSON.stringify({ log: "Done", stream: "stdout", time: "2024-05-01T10:00:01Z" })}\n`,
    );
    const mem = new MemorySink({ name: "mem" });
    agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new FileSource({ name: "job", paths: [file], startAt: "beginning", container: "docker", partialLineTimeoutMs: 100, pollIntervalMs: 20 }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(2, { timeout: 10_000 });
    expect(mem.records.map((r) => [r.message, r.log?.flags, r["@timestamp"]])).toEqual([
      ["working", undefined, "2024-05-01T10:00:00.000Z"],
      ["Done", ["split"], "2024-05-01T10:00:01.000Z"],
    ]);
    // The collector reports its counters once a second.
    const unfinished = () => agg!.metrics().sources.job!.collector["containerUnfinishedLines"];
    await waitFor(() => unfinished() === 1, { timeout: 10_000, message: () => `containerUnfinishedLines 1, got ${unfinished()}` });
  });
});
