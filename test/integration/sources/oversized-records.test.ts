// One record larger than the channel's record limit (a 12 MiB line of control bytes escapes to a 72 MiB record,
// over the 64 MiB frame limit) is dropped and counted by its collector: no frame the host refuses, so no
// ERR_CHANNEL_PROTOCOL, no restart that reads the same line again, no crash loop. The lines around it arrive.
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Aggregator, CommandSource, FileSource, MemorySink, type SourceDefinition } from "../../../src/index.js";
import { NetworkSource } from "../../../src/sources/network-source.js";
import { waitFor } from "../../helpers/wait-for.js";

const dir = mkdtempSync(join(tmpdir(), "cla-oversized-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HUGE = 12 * 1024 * 1024;
/** `before`, a line of HUGE control bytes (each escapes to `\u0001`, 6 bytes), `after`. */
const input = (): Buffer => Buffer.concat([Buffer.from("before\n"), Buffer.alloc(HUGE, 1), Buffer.from("\nafter\n")]);
const limits = { maxLineBytes: 16 * 1024 * 1024, restart: { baseDelayMs: 10, maxDelayMs: 20, maxRestarts: 3 } };

/** Runs `source` until `before` and `after` arrived; returns what the host saw. */
async function ship(source: SourceDefinition, options: { checkpointDir?: string; feed?: (s: SourceDefinition) => Promise<void> } = {}) {
  const mem = new MemorySink({ name: "mem" });
  const agg = new Aggregator({ batch: { maxWaitMs: 10 }, queue: { maxBytes: 256 * 1024 * 1024 }, checkpointDir: options.checkpointDir })
    .addSource(source)
    .addSink(mem);
  const incidents: string[] = [];
  const logs: string[] = [];
  agg.on("source:error", (e) => incidents.push(`${e.error.code}: ${e.error.message}`));
  agg.on("source:restart", () => incidents.push("restart"));
  agg.on("source:log", (e) => logs.push(`${e.level}: ${e.message}`));
  await agg.start();
  await options.feed?.(source);
  await waitFor(() => mem.messages().includes("after") || incidents.length > 0, {
    timeout: 30_000,
    message: () => `"after" delivered; have ${JSON.stringify(mem.messages())}`,
  });
  await waitFor(() => agg.metrics().sources[source.name]!.collector.oversizedRecords === 1 || incidents.length > 0, {
    timeout: 10_000,
    message: () => `the drop counted; collector counters ${JSON.stringify(agg.metrics().sources[source.name]!.collector)}`,
  });
  const report = await agg.stop({ timeoutMs: 10_000 });
  return { mem, report, incidents, logs };
}

function expectDroppedAndCounted(r: Awaited<ReturnType<typeof ship>>, name: string): void {
  expect(r.incidents).toEqual([]);
  expect(r.mem.messages()).toEqual(["before", "after"]);
  expect(r.report.sources[name]).toMatchObject({ restarts: 0, collector: expect.objectContaining({ oversizedRecords: 1 }) });
  expect(r.logs).toEqual([expect.stringMatching(/^warn: dropped a record of \d+ bytes or more: over the 16777216-byte record limit \(counted as oversizedRecords\)$/)]);
}

describe("records over the channel's record limit", () => {
  it("FileSource: dropped and counted, the position moves past them (a restart does not read the line again)", async () => {
    const logs = join(dir, "file");
    const checkpointDir = join(dir, "file-cp");
    mkdirSync(logs);
    writeFileSync(join(logs, "app.log"), input());
    const source = () => new FileSource({ name: "app", paths: [join(logs, "*.log")], pollIntervalMs: 20, ...limits });
    const first = await ship(source(), { checkpointDir });
    expectDroppedAndCounted(first, "app");
    // The next incarnation resumes after `after`: it neither reads the huge line again nor counts it twice.
    appendFileSync(join(logs, "app.log"), "later\n");
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 }, checkpointDir }).addSource(source()).addSink(mem);
    await agg.start();
    await mem.waitForCount(1, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(mem.messages()).toEqual(["later"]);
    expect(report.sources.app!.collector.oversizedRecords).toBe(0);
  });

  it("CommandSource: dropped and counted; the command keeps running", async () => {
    const file = join(dir, "command-input");
    writeFileSync(file, input());
    const source = new CommandSource({
      name: "cmd",
      command: process.execPath,
      args: ["-e", `process.stdout.write(require("node:fs").readFileSync(${JSON.stringify(file)})); setInterval(() => {}, 1e9)`],
      ...limits,
    });
    expectDroppedAndCounted(await ship(source), "cmd");
  });

  it("NetworkSource (tcp, plain lines): dropped and counted; the connection keeps working", async () => {
    const source = new NetworkSource({
      name: "net",
      listen: "tcp://127.0.0.1:0",
      parser: "plain",
      maxMessageBytes: 16 * 1024 * 1024,
      restart: limits.restart,
    });
    const feed = async (s: SourceDefinition): Promise<void> => {
      const { port } = (s as NetworkSource).addresses[0]!;
      await new Promise<void>((resolve, reject) => {
        const socket = connect(port, "127.0.0.1", () => socket.end(input()));
        socket.once("error", reject);
        socket.once("close", () => resolve());
      });
    };
    expectDroppedAndCounted(await ship(source, { feed }), "net");
  });
});
