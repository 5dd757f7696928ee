// Retry policy: full jitter within bounds, cap respected, Retry-After honoured, maxAttempts → dead letter.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Aggregator, MemorySink, type RetryEvent } from "../../../src/index.js";
import { ScriptedSink, numbered } from "../../helpers/sinks.js";

describe("retry", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("a sink failing 3 times then succeeding delivers every record exactly once", async () => {
    const sink = new MemorySink({ name: "m" }).failNext(3);
    const agg = new Aggregator({ retry: { baseDelayMs: 500, maxDelayMs: 30_000 } }).addSink(sink, {
      batch: { maxRecords: 100, maxWaitMs: 10 },
    });
    const retries: RetryEvent[] = [];
    agg.on("retry", (e) => retries.push(e));
    await agg.start();
    await agg.write(numbered(100));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sink.count).toBe(100);
    expect(new Set(sink.records.map((r) => r.n)).size).toBe(100);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
    // full jitter: attempt k waits in [0, 500·2^(k−1))
    retries.forEach((r, i) => {
      expect(r.delayMs).toBeGreaterThanOrEqual(0);
      expect(r.delayMs).toBeLessThan(500 * 2 ** i);
      expect(r.wholeBatch).toBe(true);
    });
    const report = await agg.stop();
    expect(report.sinks.m).toMatchObject({ received: 100, delivered: 100, retried: 300, droppedTotal: 0, pending: 0 });
  });

  it("delays follow the policy exactly for a given random source, and the cap holds", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    const sink = new MemorySink({ name: "m" }).failNext(8);
    const agg = new Aggregator({ retry: { baseDelayMs: 100, maxDelayMs: 1_000, factor: 2 } }).addSink(sink, {
      batch: { maxRecords: 10, maxWaitMs: 0 },
    });
    const delays: number[] = [];
    agg.on("retry", (e) => delays.push(e.delayMs));
    await agg.start();
    await agg.write(numbered(10));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(delays).toEqual([99, 199, 399, 799, 999, 999, 999, 999]);
    expect(sink.count).toBe(10);
    await agg.stop();
  });

  it("waits at least a server's Retry-After before the next attempt", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    const sink = new MemorySink({ name: "m" }).failNext(1, { retryAfterMs: 7_000 });
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 5, maxWaitMs: 0 } });
    const delays: number[] = [];
    agg.on("retry", (e) => delays.push(e.delayMs));
    await agg.start();
    await agg.write(numbered(5));
    await vi.advanceTimersByTimeAsync(6_999);
    expect(sink.count).toBe(0);
    expect(sink.sends).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.count).toBe(5);
    expect(delays).toEqual([7_000]);
    await agg.stop();
  });

  it("exhausting maxAttempts sends records to the dead-letter sink with the reason", async () => {
    const sink = new MemorySink({ name: "m" }).failNext(100, { reason: "http_503" });
    const dlq = new MemorySink({ name: "dlq" });
    const agg = new Aggregator({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 10 } })
      .addSink(sink, { batch: { maxRecords: 4, maxWaitMs: 0 }, deadLetter: "dlq" })
      .addSink(dlq, { batch: { maxWaitMs: 0 } });
    await agg.start();
    await agg.write(numbered(4));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sink.sends).toBe(3);
    expect(dlq.count).toBe(4);
    for (const r of dlq.records) {
      expect(r.dead_letter).toMatchObject({ sink: "m", attempts: 3 });
      expect(String((r.dead_letter as { reason: string }).reason)).toContain("http_503");
    }
    const report = await agg.stop();
    expect(report.sinks.m).toMatchObject({ received: 4, delivered: 0, deadLettered: 4, pending: 0 });
    expect(report.sinks.dlq).toMatchObject({ received: 4, delivered: 4 });
  });

  it("without a dead-letter sink, exhausted records are dropped, counted and announced", async () => {
    const sink = new ScriptedSink("s", () => ({ status: "retry", reason: "nope" }));
    const agg = new Aggregator({ retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } }).addSink(sink, {
      batch: { maxWaitMs: 0 },
    });
    const drops: Array<{ reason: string; count: number }> = [];
    agg.on("drop", (e) => drops.push({ reason: e.reason, count: e.count }));
    await agg.start();
    await agg.write(numbered(3));
    await vi.advanceTimersByTimeAsync(100);
    expect(drops).toEqual([{ reason: "retriesExhausted", count: 3 }]);
    const report = await agg.stop();
    expect(report.sinks.s!.dropped).toEqual({ retriesExhausted: 3 });
  });
});
