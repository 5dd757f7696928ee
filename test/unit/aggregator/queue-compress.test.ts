// queue.compress: while a sink is stalled, the records waiting past its next two batches are held deflated. What the
// sink gets once it is back must be every record, in order, as written, with each acknowledged to its source.
import { describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

/** Log-like records with varying values (and some multi-byte text), numbered by `n`. */
function lines(count: number, from = 0): Array<{ message: string; n: number; http: { status: number; path: string } }> {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return {
      message: `request ${i} for /api/items/${(i * 7919) % 10_007} took ${i % 97} ms${i % 13 === 0 ? " — Grüße 😀" : ""}`,
      n: i,
      http: { status: 200 + (i % 5), path: `/api/items/${i % 311}` },
    };
  });
}

const ns = (sink: MemorySink): number[] => sink.records.map((r) => r.n as number);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe("queue.compress", () => {
  it("holds a blocked sink's backlog deflated, then delivers every record in order and acknowledges each", async () => {
    const sink = new MemorySink({ name: "m" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(sink);
    await agg.start();
    const written = lines(20_000);
    await agg.write(written, { source: "app" });
    // Packed once the sink has delivered nothing for a moment with a send in flight.
    await waitFor(() => agg.metrics().sinks.m!.queueCompressedRecords > 19_000, { message: () => `packed, got ${JSON.stringify(agg.metrics().sinks.m)}` });
    const m = agg.metrics().sinks.m!;
    expect(m.queueRecords).toBe(20_000);
    // One batch in flight (blocked), two waiting as they are, a block's worth filling: the rest deflated.
    expect(m.queueCompressedTotal).toBe(m.queueCompressedRecords);
    expect(m.queueCompressedBytes * 4).toBeLessThan(m.queueBytes);
    expect(agg.metrics().sources.app!.settled).toBe(0);
    expect(agg.prometheus()).toContain(`child_log_agg_sink_queue_compressed_records{sink="m"} ${m.queueCompressedRecords}`);
    sink.unblock();
    await waitFor(() => agg.metrics().sources.app!.settled === 20_000, {
      message: () => `all 20,000 settled, got ${agg.metrics().sources.app!.settled}`,
    });
    expect(ns(sink)).toEqual(range(0, 20_000));
    expect(sink.records.map(({ message, n, http }) => ({ message, n, http }))).toEqual(written);
    expect(agg.metrics().sinks.m).toMatchObject({ queueCompressedRecords: 0, queueCompressedBytes: 0 });
    const report = await agg.stop();
    expect(report.sinks.m).toMatchObject({ received: 20_000, delivered: 20_000, droppedTotal: 0, pending: 0 });
  });

  it("dropOldest drops the oldest records from the deflated blocks too, and counts them", async () => {
    const sink = new MemorySink({ name: "m" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(sink, {
      queue: { maxRecords: 3_000, whenFull: "dropOldest" },
    });
    await agg.start();
    await agg.write(lines(100), { source: "app" }); // the in-flight batch, blocked
    await waitFor(() => agg.metrics().sinks.m!.inFlightBatches === 1, { message: "one batch in flight" });
    await agg.write(lines(2_900, 100), { source: "app" });
    await waitFor(() => agg.metrics().sinks.m!.queueCompressedRecords > 2_000, { message: "packed" });
    await agg.write(lines(7_000, 3_000), { source: "app" });
    sink.unblock();
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(ns(sink)).toEqual([...range(0, 100), ...range(7_100, 10_000)]);
    expect(report.sinks.m).toMatchObject({ received: 10_000, delivered: 3_000, dropped: { queueFull: 7_000 }, pending: 0 });
  });

  it("a removed sink's deflated backlog is dropped a part at a time, each part counted and announced", async () => {
    const sink = new MemorySink({ name: "m" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(sink);
    const drops: { reason: string; count: number }[] = [];
    agg.on("drop", (d) => drops.push(d));
    await agg.start();
    await agg.write(lines(25_000), { source: "app" });
    await waitFor(() => agg.metrics().sinks.m!.queueCompressedRecords > 24_000, { message: "packed" });
    const counters = await agg.removeSink("m", { timeoutMs: 50 });
    expect(counters).toMatchObject({ received: 25_000, delivered: 0, dropped: { sinkRemoved: 25_000 } });
    const parts = drops.filter((d) => d.reason === "sinkRemoved").map((d) => d.count);
    expect(parts.reduce((n, c) => n + c, 0)).toBe(25_000);
    // Not one event (and one inflated array) of 24,900: parts of at most 10,000.
    expect(Math.max(...parts)).toBeLessThanOrEqual(10_000);
    expect(agg.metrics().sources.app!.settled).toBe(25_000);
    await agg.stop();
  });

  it("beside a healthy sink, a stalled sink's backlog is deflated once the healthy one delivered it; both get everything", async () => {
    const slow = new MemorySink({ name: "slow" }).block();
    const other = new MemorySink({ name: "other" });
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(slow).addSink(other);
    await agg.start();
    await agg.write(lines(10_000), { source: "app" });
    await other.waitForCount(10_000);
    await waitFor(() => agg.metrics().sinks.slow!.queueCompressedRecords > 9_000, {
      message: () => `the stalled sink's backlog deflated, got ${JSON.stringify(agg.metrics().sinks.slow)}`,
    });
    expect(agg.metrics().sinks.other!.queueCompressedTotal).toBe(0);
    expect(agg.metrics().sources.app!.settled).toBe(0);
    slow.unblock();
    await waitFor(() => agg.metrics().sources.app!.settled === 10_000, {
      message: () => `all 10,000 settled, got ${agg.metrics().sources.app!.settled}`,
    });
    expect(ns(slow)).toEqual(range(0, 10_000));
    expect(ns(other)).toEqual(range(0, 10_000));
    await agg.stop();
  });

  it("a sink that keeps delivering as records come, its queue full, is not packed for (but for the first burst)", async () => {
    // 300 sends of 5 ms: longer than the stall timer's second, which must find the sink delivering.
    const sink = new MemorySink({ name: "m", latencyMs: 5 });
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(sink, { queue: { maxRecords: 1_000 } });
    await agg.start();
    // write() waits for room: after the first 1,000, records come as deliveries make room, 100 at a time.
    await agg.write(lines(30_000), { source: "app" });
    await sink.waitForCount(30_000, { timeoutMs: 30_000 });
    // The first 1,000 came before any delivery: that burst may have been packed; nothing after it.
    expect(agg.metrics().sinks.m!.queueCompressedTotal).toBeLessThan(1_000);
    expect(sink.messages()).toEqual(lines(30_000).map((l) => l.message));
    await agg.stop();
  });

  it("a backlog past two batches' bytes is packed too, when it is fewer records than two batches", async () => {
    const sink = new MemorySink({ name: "m" }).block();
    // Two batches are 2,000 records or 128 KiB: 1,000 records of about 1 KiB pass the bytes first.
    const agg = new Aggregator({ batch: { maxRecords: 1_000, maxBytes: 64 * 1024, maxWaitMs: 0 } }).addSink(sink);
    await agg.start();
    const big = lines(1_000).map((l) => ({ ...l, detail: "x".repeat(1_000) }));
    await agg.write(big, { source: "app" });
    await waitFor(() => agg.metrics().sinks.m!.queueCompressedRecords > 500, { message: () => `packed, got ${JSON.stringify(agg.metrics().sinks.m)}` });
    sink.unblock();
    await agg.stop();
    expect(ns(sink)).toEqual(range(0, 1_000));
  });

  it("compress: false holds every record as it arrived; a value that is not a boolean is refused", async () => {
    const sink = new MemorySink({ name: "m" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 }, queue: { compress: false } }).addSink(sink);
    await agg.start();
    await agg.write(lines(5_000), { source: "app" });
    expect(agg.metrics().sinks.m).toMatchObject({ queueRecords: 5_000, queueCompressedRecords: 0, queueCompressedTotal: 0 });
    sink.unblock();
    await agg.stop();
    expect(ns(sink)).toEqual(range(0, 5_000));
    expect(() => new Aggregator().addSink(new MemorySink({ name: "x" }), { queue: { compress: 1 as unknown as boolean } })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_OPTION", message: expect.stringContaining("queue.compress") }),
    );
  });
});
