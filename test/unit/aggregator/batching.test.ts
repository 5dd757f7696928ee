// Batcher: a batch leaves at exactly maxRecords, at maxBytes, or at maxWaitMs, whichever comes first.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Aggregator } from "../../../src/index.js";
import { ScriptedSink, numbered } from "../../helpers/sinks.js";

describe("batching", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Let promise chains (sends completing, next batch launching) run without moving the clock. */
  async function settle(): Promise<void> {
    for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(0);
  }

  async function setup(batch: { maxRecords?: number; maxBytes?: number; maxWaitMs?: number }) {
    const sink = new ScriptedSink("s", () => undefined);
    const agg = new Aggregator().addSink(sink, { batch });
    await agg.start();
    return { agg, sink };
  }

  it("sends when maxRecords is reached, without waiting for maxWaitMs", async () => {
    const { agg, sink } = await setup({ maxRecords: 10, maxWaitMs: 60_000 });
    await agg.write(numbered(9));
    await settle();
    expect(sink.calls).toHaveLength(0);
    await agg.write(numbered(1, 9));
    await settle();
    expect(sink.calls.map((c) => c.ids.length)).toEqual([10]);
    await agg.write(numbered(25, 10));
    await settle();
    expect(sink.calls.map((c) => c.ids.length)).toEqual([10, 10, 10]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sink.calls.map((c) => c.ids.length)).toEqual([10, 10, 10, 5]);
    await agg.stop();
  });

  it("sends when maxBytes is reached", async () => {
    const { agg, sink } = await setup({ maxRecords: 1000, maxBytes: 400, maxWaitMs: 60_000 });
    // each record serializes to about 60 bytes
    const one = JSON.stringify({ message: "line 00", n: 0 });
    expect(one.length).toBeLessThan(100);
    await agg.write(numbered(5));
    await settle();
    expect(sink.calls).toHaveLength(0);
    await agg.write(numbered(10, 5));
    await settle();
    expect(sink.calls.length).toBeGreaterThanOrEqual(1);
    for (const c of sink.calls) expect(c.ids.length).toBeLessThan(15);
    const sent = sink.calls.flatMap((c) => c.ids);
    expect(sent).toEqual(Array.from({ length: sent.length }, (_, i) => i));
    await agg.stop();
  });

  it("sends a partial batch exactly maxWaitMs after its first record", async () => {
    const { agg, sink } = await setup({ maxRecords: 1000, maxWaitMs: 250 });
    await agg.write(numbered(3));
    await vi.advanceTimersByTimeAsync(249);
    expect(sink.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1, 2]]);
    // the clock for the next batch starts with its own first record
    await vi.advanceTimersByTimeAsync(1000);
    await agg.write(numbered(1, 3));
    await vi.advanceTimersByTimeAsync(249);
    expect(sink.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.calls).toHaveLength(2);
    await agg.stop();
  });

  it("stop() flushes a partial batch at once", async () => {
    const { agg, sink } = await setup({ maxRecords: 1000, maxWaitMs: 60_000 });
    await agg.write(numbered(7));
    const report = agg.stop({ timeoutMs: 5_000 });
    await vi.advanceTimersByTimeAsync(50);
    const r = await report;
    expect(sink.calls.map((c) => c.ids.length)).toEqual([7]);
    expect(r.sinks.s).toMatchObject({ received: 7, delivered: 7, pending: 0 });
    expect(r.timedOut).toBe(false);
  });
});
