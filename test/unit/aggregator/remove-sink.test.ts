// removeSink at run time drains that sink, and the others keep flowing.
import { describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { numbered } from "../../helpers/sinks.js";

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
});
