// `concurrency: "adaptive"` against a destination with a fixed capacity (fake timers): the limit grows while batches
// wait for a slot, finds the capacity, backs off when pushed back, and every record is delivered exactly once.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Aggregator, Outcome, type Batch, type SendResult, type Sink } from "../../../src/index.js";
import { numbered } from "../../helpers/sinks.js";

/**
 * A destination that takes `capacity` bulk requests at once, each answered after `latencyMs`; a request above that
 * is answered at once with every item pushed back, as Elasticsearch answers 429 es_rejected_execution_exception
 * items when its write queue is full.
 */
class CapacitySink implements Sink {
  inFlight = 0;
  maxInFlight = 0;
  requests = 0;
  pushedBack = 0;
  readonly deliveries = new Map<number, number>();
  constructor(
    readonly name: string,
    private readonly capacity: number,
    private readonly latencyMs: number,
  ) {}

  async send(batch: Batch): Promise<SendResult> {
    this.requests++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (this.inFlight > this.capacity) {
      this.inFlight--;
      this.pushedBack++;
      return { outcomes: batch.records.map(() => Outcome.retry("es_rejected_execution_exception")) };
    }
    await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    this.inFlight--;
    for (const r of batch.records) this.deliveries.set(r.n as number, (this.deliveries.get(r.n as number) ?? 0) + 1);
    return undefined;
  }
}

describe('concurrency: "adaptive"', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(0.5);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("grows while batches wait, settles at the destination's capacity, and delivers everything once", async () => {
    const sink = new CapacitySink("bulk", 3, 50);
    const agg = new Aggregator({ retry: { baseDelayMs: 10, maxDelayMs: 100 } }).addSink(sink, {
      concurrency: "adaptive",
      maxConcurrency: 8,
      batch: { maxRecords: 100, maxWaitMs: 5 },
    });
    const limits: number[] = [];
    await agg.start();
    const n = 40_000;
    void agg.write(numbered(n));
    for (let t = 0; t < 600 && sink.deliveries.size < n; t++) {
      await vi.advanceTimersByTimeAsync(50);
      limits.push(agg.metrics().sinks.bulk!.concurrencyLimit);
    }
    expect(sink.deliveries.size).toBe(n);
    expect([...sink.deliveries.values()].every((c) => c === 1)).toBe(true);
    // It found more than one slot, and probed at most one past the capacity before it was pushed back.
    expect(sink.maxInFlight).toBe(4);
    expect(Math.max(...limits)).toBeGreaterThanOrEqual(3);
    expect(Math.max(...limits)).toBeLessThanOrEqual(4);
    // Each probe past the capacity costs one push-back, then the limit halves and climbs back (2, 3, 4): about one
    // request in nine here, never a storm of them.
    expect(sink.pushedBack).toBeGreaterThan(0);
    expect(sink.pushedBack).toBeLessThan(sink.requests / 6);
    const report = await agg.stop();
    expect(report.sinks.bulk).toMatchObject({ received: n, delivered: n, droppedTotal: 0, pending: 0 });
  });

  it("stays at one batch in flight while one keeps up, and a fixed concurrency reports itself as the limit", async () => {
    const sink = new CapacitySink("quiet", 8, 5);
    const fixed = new CapacitySink("fixed", 8, 5);
    const agg = new Aggregator()
      .addSink(sink, { concurrency: "adaptive", batch: { maxRecords: 100, maxWaitMs: 5 } })
      .addSink(fixed, { concurrency: 3, batch: { maxRecords: 100, maxWaitMs: 5 } });
    await agg.start();
    // A trickle: a batch's worth every 100 ms, answered in 5 ms.
    for (let i = 0; i < 50; i++) {
      void agg.write(numbered(100, i * 100));
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(sink.deliveries.size).toBe(5_000);
    expect(sink.maxInFlight).toBe(1);
    const m = agg.metrics().sinks;
    expect(m.quiet!.concurrencyLimit).toBe(1);
    expect(m.fixed!.concurrencyLimit).toBe(3);
    expect(agg.prometheus()).toContain('child_log_agg_sink_concurrency_limit{sink="fixed"} 3');
    await agg.stop();
  });
});
