// Deterministic `_id`s end to end: a real FileSource collector tails real files into ElasticsearchSink
// (`id: "deterministic"`, `create`) against the loopback bulk API. A rotated file's successor restarts its offsets at
// 0 with the same path, so identical lines there must still be new documents (device and inode are in the key),
// while a collector killed and restarted replays lines that must answer 409, not be stored twice.
import { mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, ElasticsearchSink, FileSource } from "../../../src/index.js";
import { FakeElasticsearch } from "../../helpers/fake-elasticsearch.js";
import { waitFor } from "../../helpers/wait-for.js";

let dir: string;
const cleanups: (() => Promise<unknown>)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-es-file-"));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** Five byte-identical lines: without a timestamp of their own, only the file and offset tell them apart. */
const FIVE = `${JSON.stringify({ level: "info", msg: "request completed", status: 200 })}\n`.repeat(5);

async function setup(extra: { checkpointDir?: string } = {}) {
  const fake = await FakeElasticsearch.start();
  cleanups.push(() => fake.close());
  const es = new ElasticsearchSink({ name: "es", node: fake.url, index: "logs-app", id: "deterministic" });
  const file = join(dir, "app.log");
  writeFileSync(file, FIVE);
  const agg = new Aggregator({ ...extra, batch: { maxWaitMs: 10 }, retry: { baseDelayMs: 5, maxDelayMs: 50 } })
    .addSource(
      new FileSource({
        name: "app",
        paths: [file],
        parser: "json",
        pollIntervalMs: 20,
        globIntervalMs: 50,
        rotateWaitMs: 200,
        checkpointIntervalMs: 60_000,
        restart: { baseDelayMs: 10, maxDelayMs: 50 },
      }),
    )
    .addSink(es);
  cleanups.push(() => agg.stop({ timeoutMs: 5_000 }));
  await agg.start();
  return { fake, es, agg, file };
}

/** Rename-rotate `file` and write the same five lines into its successor at the same path. */
function rotate(file: string): void {
  renameSync(file, `${file}.1`);
  writeFileSync(file, FIVE);
}

/** Stored documents per `log.file.inode`, and the `_id`s stored more than once. */
function storedByInode(fake: FakeElasticsearch): { perInode: Record<string, number>; repeatedIds: string[] } {
  const perInode: Record<string, number> = {};
  const seen = new Set<string>();
  const repeatedIds: string[] = [];
  for (const op of fake.stored) {
    const inode = String((op.doc?.log as { file?: { inode?: string } } | undefined)?.file?.inode);
    perInode[inode] = (perInode[inode] ?? 0) + 1;
    const id = String(op.meta._id);
    if (seen.has(id)) repeatedIds.push(id);
    seen.add(id);
  }
  return { perInode, repeatedIds };
}

describe("ElasticsearchSink with deterministic ids, fed by a FileSource", () => {
  it("stores identical lines before and after a rename rotation: 10 written, 10 stored, no 409", async () => {
    const { fake, es, agg, file } = await setup();
    const oldInode = String(statSync(file, { bigint: true }).ino);
    await waitFor(() => fake.documentCount >= 5, { timeout: 10_000, message: () => `5 documents of app.log, got ${fake.documentCount}` });
    rotate(file);
    const newInode = String(statSync(file, { bigint: true }).ino);
    await waitFor(() => fake.received.length >= 10, { timeout: 10_000, message: () => `10 bulk items, got ${fake.received.length}` });
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(fake.received).toHaveLength(10);
    expect(fake.documentCount).toBe(10);
    expect(storedByInode(fake)).toEqual({ perInode: { [oldInode]: 5, [newInode]: 5 }, repeatedIds: [] });
    expect(es.metrics()).toMatchObject({ item_status_201: 10, records_duplicate: 0 });
    expect(es.metrics()["item_status_409"]).toBeUndefined(); // status counters appear once seen
    expect(report.sinks.es).toMatchObject({ received: 10, delivered: 10 });
  });

  it("after a rotation, a collector SIGKILL replays the successor's lines: they answer 409 and are stored once", async () => {
    const { fake, es, agg, file } = await setup({ checkpointDir: join(dir, "cp") });
    const restarts: number[] = [];
    agg.on("source:restart", (e) => restarts.push(e.restarts));
    await waitFor(() => fake.documentCount >= 5, { timeout: 10_000, message: () => `5 documents of app.log, got ${fake.documentCount}` });
    rotate(file);
    await waitFor(() => fake.documentCount >= 10, { timeout: 10_000, message: () => `10 documents, got ${fake.documentCount}` });
    // Positions settled since the collector's first checkpoint write wait 60 s (checkpointIntervalMs): the restarted
    // collector reads the successor again from its start.
    process.kill(agg.metrics().sources.app!.pid!, "SIGKILL");
    await waitFor(() => restarts.length >= 1, { timeout: 10_000, message: "a restart after SIGKILL" });
    await waitFor(() => fake.received.length >= 15, { timeout: 10_000, message: () => `the replayed items, got ${fake.received.length} in all` });
    const report = await agg.stop({ timeoutMs: 5_000 });
    const replayed = fake.received.length - 10;
    expect(fake.documentCount).toBe(10);
    expect(Object.values(storedByInode(fake).perInode)).toEqual([5, 5]);
    expect(storedByInode(fake).repeatedIds).toEqual([]);
    expect(es.metrics()).toMatchObject({ item_status_201: 10, item_status_409: replayed, records_duplicate: replayed });
    expect(report.sinks.es).toMatchObject({ received: 10 + replayed, delivered: 10 + replayed });
  });
});
