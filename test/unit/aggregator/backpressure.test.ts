// Isolated lanes: a slow sink never holds back a fast one unless it is asked to block; blocking pauses producers.
import { afterEach, describe, expect, it, vi } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { numbered } from "../../helpers/sinks.js";

const N = 50_000;

describe("slow and fast sinks fed the same 50k records", () => {
  afterEach(() => vi.useRealTimers());

  it("dropNewest on the slow sink: nothing blocks, the fast one gets all, drops equal what is missing", async () => {
    vi.useFakeTimers();
    const fast = new MemorySink({ name: "fast" });
    const slow = new MemorySink({ name: "slow", latencyMs: 500 });
    const agg = new Aggregator({ batch: { maxRecords: 1_000, maxWaitMs: 5 } })
      .addSink(fast)
      .addSink(slow, { queue: { maxRecords: 5_000, whenFull: "dropNewest" } });
    const dropped: number[] = [];
    agg.on("drop", (e) => {
      expect(e).toMatchObject({ sink: "slow", reason: "queueFull" });
      dropped.push(e.count);
    });
    await agg.start();
    // write() resolving without any clock movement proves nothing blocked the producer
    for (let i = 0; i < N; i += 5_000) await agg.write(numbered(5_000, i));
    for (let i = 0; i < 200 && fast.count < N; i++) await vi.advanceTimersByTimeAsync(1);
    expect(fast.count).toBe(N);
    expect(slow.count).toBeLessThan(N); // still behind: its first send has not even answered
    const stopping = agg.stop({ timeoutMs: 60_000 });
    await vi.advanceTimersByTimeAsync(10_000);
    const report = await stopping;
    expect(slow.count).toBe(5_000);
    const dropCount = dropped.reduce((a, b) => a + b, 0);
    expect(dropCount).toBe(N - slow.count);
    expect(report.sinks.slow).toMatchObject({ received: N, delivered: slow.count, dropped: { queueFull: N - slow.count }, pending: 0 });
    expect(report.sinks.fast).toMatchObject({ received: N, delivered: N, droppedTotal: 0 });
    expect(new Set(fast.records.map((r) => r.n)).size).toBe(N);
  });

  it("block: producers pause, queue depth never exceeds maxRecords, everything arrives at both", async () => {
    vi.useFakeTimers();
    const fast = new MemorySink({ name: "fast" });
    const slow = new MemorySink({ name: "slow", latencyMs: 500 });
    const maxRecords = 5_000;
    const agg = new Aggregator({ batch: { maxRecords: 1_000, maxWaitMs: 5 } })
      .addSink(fast)
      .addSink(slow, { queue: { maxRecords, whenFull: "block" }, concurrency: 2 });
    await agg.start();
    let maxDepth = 0;
    const sample = (): void => {
      const m = agg.metrics();
      maxDepth = Math.max(maxDepth, m.sinks.slow!.queueRecords);
    };
    agg.on("delivered", sample);
    let written = false;
    const writing = agg.write(numbered(N)).then(() => {
      written = true;
    });
    await vi.advanceTimersByTimeAsync(1);
    sample();
    // The producer is parked: its write has not resolved and the rest waits outside the queues.
    expect(written).toBe(false);
    expect(agg.metrics().sources.host!.waiting).toBe(N - maxRecords);
    while (slow.count < N) {
      await vi.advanceTimersByTimeAsync(100);
      sample();
    }
    await writing;
    expect(written).toBe(true);
    expect(maxDepth).toBeLessThanOrEqual(maxRecords);
    expect(maxDepth).toBe(maxRecords);
    expect(fast.count).toBe(N);
    const stopping = agg.stop();
    await vi.advanceTimersByTimeAsync(100);
    const report = await stopping;
    expect(report.sinks.slow).toMatchObject({ received: N, delivered: N, droppedTotal: 0, pending: 0 });
    expect(slow.records.map((r) => r.n)).toEqual(Array.from({ length: N }, (_, i) => i));
  });

  it("dropOldest keeps the newest records and counts what it dropped", async () => {
    vi.useFakeTimers();
    const sink = new MemorySink({ name: "s" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(sink, {
      queue: { maxRecords: 300, whenFull: "dropOldest" },
    });
    await agg.start();
    await agg.write(numbered(100)); // becomes the in-flight batch (blocked), ids 0..99
    await vi.advanceTimersByTimeAsync(1);
    await agg.write(numbered(1_000, 100)); // 200 places left; only the newest 200 may stay
    sink.unblock();
    const stopping = agg.stop({ timeoutMs: 5_000 });
    await vi.advanceTimersByTimeAsync(100);
    const report = await stopping;
    const ids = sink.records.map((r) => r.n as number);
    expect(ids.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(ids.slice(100)).toEqual(Array.from({ length: 200 }, (_, i) => 900 + i));
    expect(report.sinks.s).toMatchObject({ received: 1_100, delivered: 300, dropped: { queueFull: 800 }, pending: 0 });
  });
});
