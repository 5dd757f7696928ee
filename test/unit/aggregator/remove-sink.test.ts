// removeSink at run time drains that sink, and the others keep flowing; a stop() that comes meanwhile takes it over.
import { describe, expect, it } from "vitest";
import { Aggregator, MemorySink, type SinkCounters, type Sink } from "../../../src/index.js";
import { numbered } from "../../helpers/sinks.js";
import { waitFor } from "../../helpers/wait-for.js";

describe("removeSink", () => {
  it("drains the removed sink and leaves the others flowing", async () => {
    const a = new MemorySink({ name: "a", latencyMs: 20 });
    const b = new MemorySink({ name: "b" });
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 10 } }).addSink(a).addSink(b);
    await agg.start();
    await agg.write(numbered(1_000));
    const counters = await agg.removeSink("a", { timeoutMs: 10_000 });
    expect(counters).toMatchObject({ received: 1_000, delivered: 1_000, pending: 0, droppedTotal: 0 });
    expect(a.count).toBe(1_000);
    expect(a.closed).toBe(true);
    await agg.write(numbered(500, 1_000));
    await b.waitForCount(1_500);
    expect(a.count).toBe(1_000);
    const report = await agg.stop();
    // The removed sink stays in the report with what it did in this run.
    expect(Object.keys(report.sinks).sort()).toEqual(["a", "b"]);
    expect(report.sinks.a).toMatchObject({ received: 1_000, delivered: 1_000, pending: 0 });
    expect(report.sinks.b).toMatchObject({ received: 1_500, delivered: 1_500 });
    expect(report.totals).toMatchObject({ received: 2_500, delivered: 2_500 });
  });

  it("at its deadline drops (counted) what the removed sink still holds", async () => {
    const a = new MemorySink({ name: "a" }).neverAnswer();
    const b = new MemorySink({ name: "b" });
    const agg = new Aggregator({ batch: { maxRecords: 10, maxWaitMs: 0 } }).addSink(a).addSink(b);
    const reasons: string[] = [];
    agg.on("drop", (e) => reasons.push(`${e.sink}:${e.reason}:${e.count}`));
    await agg.start();
    await agg.write(numbered(30));
    await b.waitForCount(30);
    const counters = await agg.removeSink("a", { timeoutMs: 100 });
    expect(counters.dropped).toEqual({ sinkRemoved: 30 });
    expect(counters.pending).toBe(0);
    expect(reasons.reduce((n, r) => n + Number(r.split(":")[2]), 0)).toBe(30);
    const report = await agg.stop();
    expect(report.sinks.a).toMatchObject({ received: 30, delivered: 0, dropped: { sinkRemoved: 30 }, droppedTotal: 30 });
    expect(report.totals.dropped).toBe(30);
  });

  it("removing a sink whose open() hangs aborts the open at the deadline, then closes it and drops what it held", async () => {
    let openSignal: AbortSignal | undefined;
    let closedAfterOpenSettled = false;
    let openSettled = false;
    const hanging: Sink = {
      name: "hanging",
      open({ signal }) {
        openSignal = signal;
        return new Promise<void>((_, reject) =>
          signal.addEventListener("abort", () => {
            openSettled = true;
            reject(signal.reason as Error);
          }),
        );
      },
      send() {},
      close() {
        closedAfterOpenSettled = openSettled;
      },
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } });
    await agg.start();
    agg.addSink(hanging);
    await agg.write(numbered(3));
    await waitFor(() => openSignal !== undefined, { message: () => "open() was never called" });
    const counters = await agg.removeSink("hanging", { timeoutMs: 100 });
    expect(openSignal!.aborted).toBe(true);
    expect(closedAfterOpenSettled).toBe(true);
    expect(counters).toMatchObject({ received: 3, delivered: 0, dropped: { sinkRemoved: 3 }, pending: 0 });
    await agg.stop();
  });

  it("removing a sink whose open() failed does not wait out its deadline for a drain that cannot happen", async () => {
    let opens = 0;
    const broken: Sink = {
      name: "broken",
      open() {
        opens++;
        throw new Error("unreachable");
      },
      send() {},
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } });
    const errors: string[] = [];
    agg.on("sink:error", (e) => errors.push(e.error.code));
    await agg.start();
    agg.addSink(broken, { retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    await agg.write(numbered(4));
    await waitFor(() => errors.length > 0, { message: () => "open() failure was never reported" });
    // A deadline longer than the test's own timeout: only a removal that skips the drain resolves in time.
    const counters = await agg.removeSink("broken", { timeoutMs: 600_000 });
    expect(counters).toMatchObject({ received: 4, delivered: 0, dropped: { sinkRemoved: 4 }, pending: 0 });
    // Nothing opens it again at its removal or at the stop (a retry before them, after a jittered backoff, is allowed).
    const opensAtRemoval = opens;
    expect(new Set(errors)).toEqual(new Set(["ERR_SINK_OPEN"]));
    await agg.stop();
    expect(opens).toBe(opensAtRemoval);
  });

  it("a dead-letter sink stays dead-letter only after the sink that named it is removed; added again, a sink starts afresh", async () => {
    const main = new MemorySink({ name: "main" });
    const dlq = new MemorySink({ name: "dlq" });
    const other = new MemorySink({ name: "other" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(main, { deadLetter: "dlq" }).addSink(dlq).addSink(other);
    await agg.start();
    await agg.write(numbered(10));
    await other.waitForCount(10);
    await agg.removeSink("main");
    await agg.write(numbered(10, 10));
    await other.waitForCount(20);
    expect(dlq.count).toBe(0);
    // Removed and added again under its name, without anyone naming it: an ordinary sink.
    await agg.removeSink("dlq");
    const again = new MemorySink({ name: "dlq" });
    agg.addSink(again);
    await agg.write(numbered(5, 20));
    await again.waitForCount(5);
    await agg.stop();
  });

  it("adds a sink after start and it starts receiving", async () => {
    const a = new MemorySink({ name: "a" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(a);
    await agg.start();
    await agg.write(numbered(5));
    const late = new MemorySink({ name: "late" });
    agg.addSink(late);
    await agg.write(numbered(5, 5));
    await late.waitForCount(5);
    const report = await agg.stop();
    expect(report.sinks.a!.delivered).toBe(10);
    expect(report.sinks.late!.delivered).toBe(5);
  });

  it("with a batch in flight at its deadline, resolves with it dropped and announces one drop, none of 0", async () => {
    // No close(): nothing else to wait for before removeSink() resolves.
    let sent = 0;
    const s: Sink = {
      name: "s",
      send() {
        sent++;
        return new Promise<void>(() => undefined);
      },
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(s).addSink(new MemorySink({ name: "keep" }));
    const drops: string[] = [];
    agg.on("drop", (e) => drops.push(`${e.sink}:${e.reason}:${e.count}`));
    await agg.start();
    await agg.write(numbered(5));
    await waitFor(() => sent === 1, { timeout: 5_000, message: "the batch was not sent" });
    const counters = await agg.removeSink("s", { timeoutMs: 50 });
    expect(counters).toMatchObject({ received: 5, dropped: { sinkRemoved: 5 }, droppedTotal: 5, pending: 0 });
    expect(drops).toEqual(["s:sinkRemoved:5"]);
    const report = await agg.stop();
    expect(report.sinks.s).toMatchObject({ received: 5, dropped: { sinkRemoved: 5 }, pending: 0 });
  });

  it("the report has the final outcome of what it rejected and its dead-letter sink took after it was removed", async () => {
    const s = new MemorySink({ name: "s" }).rejectWhen(() => true, "bad");
    const dlq = new MemorySink({ name: "dlq" }).block();
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } })
      .addSink(s, { deadLetter: "dlq" })
      .addSink(dlq)
      .addSink(new MemorySink({ name: "other" }));
    const drops: string[] = [];
    agg.on("drop", (e) => drops.push(`${e.sink}:${e.reason}:${e.count}`));
    await agg.start();
    await agg.write(numbered(4));
    await waitFor(() => agg.metrics().sinks.dlq!.received === 4, { timeout: 5_000, message: "the rejected records did not reach the dead-letter sink" });
    // Their copies wait in the (blocked) dead-letter sink: still pending for "s" when it is removed.
    const counters = await agg.removeSink("s", { timeoutMs: 50 });
    expect(counters).toMatchObject({ received: 4, deadLettered: 0, droppedTotal: 0, dropped: {}, pending: 4 });
    // Another removal meanwhile does not freeze what the report says of "s".
    await agg.removeSink("other");
    dlq.unblock();
    await dlq.waitForCount(4);
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(report.sinks.s).toMatchObject({ received: 4, deadLettered: 4, droppedTotal: 0, dropped: {}, pending: 0 });
    expect(report.totals).toMatchObject({ pending: 0, deadLettered: 4 });
    expect(report.sinks.other).toMatchObject({ received: 4, delivered: 4 });
    expect(report.timedOut).toBe(false);
    expect(drops).toEqual([]);
  });

  it("a stop() that comes meanwhile abandons and closes the sink by its own deadline; it is in the report, pending", async () => {
    const s = new MemorySink({ name: "s" }).neverAnswer();
    const keep = new MemorySink({ name: "keep" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(s).addSink(keep);
    await agg.start();
    await agg.write(numbered(5));
    await keep.waitForCount(5);
    let removed: SinkCounters | undefined;
    const removing = agg.removeSink("s", { timeoutMs: 60_000 }).then((c) => (removed = c));
    // Until its removal resolves, it is still in metrics(), with what it holds.
    expect(agg.metrics().sinks.s).toMatchObject({ received: 5, delivered: 0, pending: 5 });
    const report = await agg.stop({ timeoutMs: 200 });
    // Its records were not delivered by the stop's deadline: pending (not settled, so not committed), not dropped.
    expect(report.sinks.s).toMatchObject({ received: 5, delivered: 0, droppedTotal: 0, pending: 5 });
    expect(report.totals.pending).toBe(5);
    expect(report.timedOut).toBe(true);
    expect(report.sources.host).toMatchObject({ admitted: 5, settled: 0 });
    expect(s.closed).toBe(true);
    // removeSink() resolved before stop() did, with the same counters.
    expect(removed).toMatchObject({ received: 5, pending: 5, droppedTotal: 0 });
    await removing;
    expect(agg.metrics().sinks.s).toBeUndefined();
  });
});
