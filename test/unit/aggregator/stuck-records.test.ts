// A record the destination keeps failing (a "poison" document: always 500, or 429 for its size) is retried on its own,
// and must not hold back the records after it. The sink-wide backoff is for a destination that is unwell, which a
// delivery of other records disproves; while nothing is delivered (an outage), it grows with each failed probe.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Aggregator, type DeliveryReport, Outcome, type RetryEvent, type SendResult } from "../../../src/index.js";
import { type Call, ScriptedSink, numbered } from "../../helpers/sinks.js";
import type { Batch } from "../../../src/index.js";

/**
 * Records for which `bad(n)` holds fail as items with `reason` (a retryable status); the rest are delivered. A batch
 * of only such records gets one shared outcome, as the Elasticsearch sink answers a bulk response whose items all
 * failed alike. Once `whole()` returns an outcome, every send gets that outcome instead.
 */
function itemFailingSink(bad: (n: number) => boolean, reason: string, whole: () => SendResult | undefined = () => undefined): ScriptedSink {
  return new ScriptedSink("es", (batch: Batch): SendResult => {
    const answer = whole();
    if (answer !== undefined) return answer;
    const failed = batch.records.map((r) => bad(r.n as number));
    if (failed.every(Boolean)) return Outcome.retry(reason);
    if (!failed.some(Boolean)) return undefined;
    return Outcome.perRecord(failed.map((f) => (f ? Outcome.retry(reason) : Outcome.delivered)));
  });
}

/** Records whose `n` is in `poison` fail at every attempt (a 500 per item). */
const poisonSink = (poison: ReadonlySet<number>): ScriptedSink => itemFailingSink((n) => poison.has(n), "http_500");

/** While `whole()` says nothing, one record in ten fails as an item (a 429 item of a busy bulk). */
const tenthFailsAsItem = (whole: () => SendResult | undefined): ScriptedSink => itemFailingSink((n) => n % 10 === 0, "item_429", whole);

/** stop() without waiting for the record that never gets through (its deadline is a timer too). */
async function stopNow(agg: Aggregator): Promise<DeliveryReport> {
  const stopped = agg.stop({ timeoutMs: 0 });
  await vi.advanceTimersByTimeAsync(1);
  return stopped;
}

const ids = (calls: readonly Call[]): number[][] => calls.map((c) => c.ids);

describe("a record that keeps failing", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    // Every backoff at its ceiling, so the schedule below is exact: attempt k waits floor(0.999 · 500 · 2^(k−1)) ms.
    vi.spyOn(Math, "random").mockReturnValue(0.999);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("failing on its own after a partial failure does not hold back the batches after it", async () => {
    const sink = poisonSink(new Set([5]));
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 10, maxWaitMs: 0 } });
    const retries: RetryEvent[] = [];
    agg.on("retry", (e) => retries.push(e));
    await agg.start();
    await agg.write(numbered(10));
    await vi.advanceTimersByTimeAsync(0);
    expect(ids(sink.calls)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
    // 499 ms later it is sent alone and fails again, whole: its next attempt is 999 ms away.
    await vi.advanceTimersByTimeAsync(499);
    expect(ids(sink.calls).at(-1)).toEqual([5]);
    // Records written now go out at once, not after that retry.
    await agg.write(numbered(10, 10));
    await vi.advanceTimersByTimeAsync(1);
    expect(ids(sink.calls).at(-1)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    // And so on for as long as it keeps failing, on its own schedule.
    await vi.advanceTimersByTimeAsync(999);
    expect(ids(sink.calls).at(-1)).toEqual([5]);
    await agg.write(numbered(5, 20));
    await vi.advanceTimersByTimeAsync(1);
    expect(ids(sink.calls).at(-1)).toEqual([20, 21, 22, 23, 24]);
    expect(retries.map((r) => [r.attempt, r.delayMs, r.wholeBatch])).toEqual([
      [1, 499, false],
      [2, 999, false],
      [3, 1_998, false],
    ]);
    const report = await stopNow(agg);
    expect(report.sinks.es).toMatchObject({ received: 25, delivered: 24, pending: 1 });
  });

  it("alone in a batch of its own, it stops holding the sink back once a probe with other records is delivered", async () => {
    const sink = poisonSink(new Set([0]));
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 10, maxWaitMs: 0 } });
    const retries: RetryEvent[] = [];
    agg.on("retry", (e) => retries.push(e));
    await agg.start();
    await agg.write(numbered(1));
    await vi.advanceTimersByTimeAsync(1);
    // A batch that failed whole may mean the destination is down: the sink probes with it before sending more.
    await agg.write(numbered(5, 1));
    await vi.advanceTimersByTimeAsync(497);
    expect(ids(sink.calls)).toEqual([[0]]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ids(sink.calls)).toEqual([[0], [0]]);
    // The probe failed twice with the same record: the next probe is the records that waited, and they are delivered.
    await vi.advanceTimersByTimeAsync(999);
    expect(ids(sink.calls)).toEqual([[0], [0], [1, 2, 3, 4, 5], [0]]);
    // The destination took them, so the record that failed again is retried on its own from now on.
    await agg.write(numbered(3, 6));
    await vi.advanceTimersByTimeAsync(1);
    expect(ids(sink.calls).at(-1)).toEqual([6, 7, 8]);
    expect(retries.map((r) => [r.attempt, r.wholeBatch])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    const report = await stopNow(agg);
    expect(report.sinks.es).toMatchObject({ received: 9, delivered: 8, pending: 1 });
  });

  it("while nothing is delivered, the sink's backoff grows with every failed probe, whichever records it sent", async () => {
    const sink = new ScriptedSink("es", () => Outcome.retry("http_503"));
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 10, maxWaitMs: 0 } });
    await agg.start();
    const sentAt: number[] = [];
    const t0 = Date.now();
    // A steady trickle of new records during the outage.
    for (let i = 0; i < 120; i++) {
      await agg.write(numbered(1, i));
      await vi.advanceTimersByTimeAsync(250);
      while (sentAt.length < sink.calls.length) sentAt.push(Date.now() - t0);
    }
    // 30 s: 0, then 499, 999, 1,999, 3,999, 7,999 and 15,999 ms apart at most (each probe waits for the tick after).
    expect(sentAt.length).toBeLessThanOrEqual(7);
    for (let k = 2; k < sentAt.length; k++) expect(sentAt[k]! - sentAt[k - 1]!).toBeGreaterThanOrEqual(sentAt[k - 1]! - sentAt[k - 2]!);
    await stopNow(agg);
  });

  it.each([1, 8])("records retried on their own are probes like any other in an outage: no hammering (concurrency %i)", async (concurrency) => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    let down = false;
    // While well, one record in ten fails as an item: 200 groups retried on their own.
    const sink = tenthFailsAsItem(() => (down ? Outcome.retry("http_503") : undefined));
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 10, maxWaitMs: 0 }, concurrency });
    await agg.start();
    for (let i = 0; i < 200; i++) {
      await agg.write(numbered(10, i * 10));
      await vi.advanceTimersByTimeAsync(5);
    }
    await vi.advanceTimersByTimeAsync(100);
    down = true;
    const before = sink.calls.length;
    // A minute of outage, with a new record every 250 ms.
    for (let i = 0; i < 240; i++) {
      await agg.write(numbered(1, 100_000 + i));
      await vi.advanceTimersByTimeAsync(250);
    }
    // A probe (or `concurrency` sends together) per backoff window, the window growing: a few dozen at most. Each
    // group on its own schedule, as before, made 388 requests (concurrency 1), up to 101 in one second.
    expect(sink.calls.length - before).toBeLessThan(60);
    await stopNow(agg);
  });

  it("a server's Retry-After holds the whole sink back, also when it answers records retried on their own", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    let throttled = false;
    const sink = tenthFailsAsItem(() => (throttled ? Outcome.retry("http_429", 60_000) : undefined));
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 10, maxWaitMs: 0 } });
    await agg.start();
    for (let i = 0; i < 20; i++) {
      await agg.write(numbered(10, i * 10));
      await vi.advanceTimersByTimeAsync(1_000);
    }
    throttled = true;
    const n0 = sink.calls.length;
    while (sink.calls.length === n0) await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(1);
    const answered = sink.calls.length; // the server has answered 429, Retry-After 60 s
    await vi.advanceTimersByTimeAsync(50_000);
    expect(sink.calls.length - answered).toBe(0);
    await stopNow(agg);
  });

  it("sends in flight together that fail together count as one failed probe, and then one send at a time probes", async () => {
    let recovered = false;
    const sink = new ScriptedSink("es", () => (recovered ? undefined : Outcome.retry("http_503")));
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 10, maxWaitMs: 0 }, concurrency: 4 });
    const retries: RetryEvent[] = [];
    agg.on("retry", (e) => retries.push(e));
    await agg.start();
    await agg.write(numbered(40));
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.calls).toHaveLength(4);
    expect(retries.map((r) => [r.attempt, r.delayMs])).toEqual([
      [1, 499],
      [1, 499],
      [1, 499],
      [1, 499],
    ]);
    // 499 ms later all four are due, but until something is delivered one send at a time probes: one step further.
    await vi.advanceTimersByTimeAsync(499);
    expect(sink.calls).toHaveLength(5);
    expect(retries.slice(4).map((r) => [r.attempt, r.delayMs])).toEqual([[2, 999]]);
    // Once a probe is delivered, the other three go at once, together.
    sink.calls.length = 0;
    recovered = true;
    await vi.advanceTimersByTimeAsync(999);
    expect(sink.calls).toHaveLength(4);
    await stopNow(agg);
  });
});
