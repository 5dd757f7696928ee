// stop(): never hangs past its deadline; drains healthy sinks completely; the report's numbers add up; records no sink
// can take any more are not waited for, and are in the report.
import { describe, expect, it } from "vitest";
import { Aggregator, CommandSource, type DeliveryReport, MemorySink } from "../../../src/index.js";
import { ScriptedSink, numbered } from "../../helpers/sinks.js";
import { waitFor } from "../../helpers/wait-for.js";

/** Resolve with stop()'s report, failing with `message` if it is not there within 10 s (its timeout is far longer). */
async function stopWithin10s(agg: Aggregator, message: string): Promise<DeliveryReport> {
  let report: DeliveryReport | undefined;
  void agg.stop({ timeoutMs: 120_000 }).then((r) => (report = r));
  await waitFor(() => report !== undefined, { timeout: 10_000, message });
  return report!;
}

describe("stop", () => {
  it("with a sink that never answers, resolves by the deadline and reports what is pending", async () => {
    const stuck = new MemorySink({ name: "stuck" }).neverAnswer();
    const ok = new MemorySink({ name: "ok" });
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(stuck).addSink(ok);
    await agg.start();
    await agg.write(numbered(250));
    await ok.waitForCount(250);
    const report = await agg.stop({ timeoutMs: 300 });
    expect(report.timedOut).toBe(true);
    expect(report.sinks.stuck).toMatchObject({ received: 250, delivered: 0, pending: 250 });
    expect(report.sinks.ok).toMatchObject({ received: 250, delivered: 250, pending: 0 });
    expect(report.totals.pending).toBe(250);
    // the stuck send was aborted through its signal
    expect(stuck.abortedSends).toBeGreaterThan(0);
  });

  it("with healthy sinks drains everything: in = delivered + dead-lettered + dropped", async () => {
    const a = new MemorySink({ name: "a" }).rejectWhen((r) => (r.n as number) % 10 === 0, "bad_doc");
    const b = new MemorySink({ name: "b" });
    const dlq = new MemorySink({ name: "dlq" });
    const c = new ScriptedSink("c", () => ({ status: "rejected", reason: "never" }));
    const agg = new Aggregator({ batch: { maxRecords: 500, maxWaitMs: 50 } })
      .addSink(a, { deadLetter: "dlq" })
      .addSink(b, { queue: { maxRecords: 1_000, whenFull: "dropNewest" } })
      .addSink(c)
      .addSink(dlq);
    await agg.start();
    for (let i = 0; i < 5_000; i += 1_000) await agg.write(numbered(1_000, i));
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.timedOut).toBe(false);
    for (const [name, s] of Object.entries(report.sinks)) {
      expect(s.pending, name).toBe(0);
      expect(s.delivered + s.deadLettered + s.droppedTotal, name).toBe(s.received);
    }
    expect(report.sinks.a).toMatchObject({ received: 5_000, delivered: 4_500, deadLettered: 500 });
    expect(report.sinks.dlq).toMatchObject({ received: 500, delivered: 500 });
    expect(report.sinks.c).toMatchObject({ received: 5_000, dropped: { rejected: 5_000 } });
    expect(report.sources.host).toMatchObject({ emitted: 5_000, admitted: 5_000, waiting: 0 });
    expect(report.totals.received).toBe(report.totals.delivered + report.totals.deadLettered + report.totals.dropped);
  });

  it.each([
    ["null", null],
    ["a number", 5_000],
    ["a negative timeoutMs", { timeoutMs: -1 }],
    ["a string timeoutMs", { timeoutMs: "10s" }],
  ])("options that are %s: stop(), removeSource() and removeSink() reject with ERR_INVALID_OPTION, and nothing stops", async (_t, bad) => {
    const agg = new Aggregator().addSink(new MemorySink({ name: "m" }));
    await agg.start();
    agg.addSource(new CommandSource({ name: "c", command: process.execPath, args: ["-e", ""] }));
    for (const call of [() => agg.stop(bad as never), () => agg.removeSource("c", bad as never), () => agg.removeSink("m", bad as never)]) {
      await expect(call()).rejects.toMatchObject({ code: "ERR_INVALID_OPTION", name: "InvalidOptionError" });
    }
    expect(agg.state).toBe("running");
    await agg.stop();
  });

  it("is idempotent and supports `await using`", async () => {
    const m = new MemorySink({ name: "m" });
    {
      await using agg = new Aggregator().addSink(m);
      await agg.start();
      await agg.write({ message: "hi" });
      const [r1, r2] = await Promise.all([agg.stop(), agg.stop()]);
      expect(r1).toBe(r2);
    }
    expect(m.count).toBe(1);
    expect(m.closed).toBe(true);
  });

  it("does not wait for written records no sink is left to take (all removed), and reports them as waiting", async () => {
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(new MemorySink({ name: "a" }));
    await agg.start();
    await agg.removeSink("a");
    // No sink: these wait to be admitted, and no sink can be added once stop() began.
    const written = agg.write(numbered(7));
    const rejected = expect(written).rejects.toMatchObject({ code: "ERR_AGGREGATOR_STOPPED" });
    const report = await stopWithin10s(agg, "stop() waited (for its 120 s timeout) for records no sink could take");
    expect(report.sources.host).toMatchObject({ emitted: 7, admitted: 0, settled: 0, waiting: 7 });
    // Not delivered, so not a clean report, though no sink holds them.
    expect(report.timedOut).toBe(true);
    await rejected;
  });

  it("does not wait for records of a source whose named sinks were all removed, and reports them as waiting", async () => {
    const out = new MemorySink({ name: "out" });
    const other = new MemorySink({ name: "other" });
    const ticking = new CommandSource({
      name: "tick",
      parser: "plain",
      command: process.execPath,
      args: ["-e", "let i = 0; setInterval(() => console.log('tick ' + i++), 5)"],
    });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(out).addSink(other).addSource(ticking, { sinks: ["out"] });
    await agg.start();
    await out.waitForCount(3, { timeout: 10_000 });
    await agg.removeSink("out", { timeoutMs: 5_000 });
    await waitFor(() => agg.metrics().sources.tick!.waiting > 0, { timeout: 10_000, message: "no record of source tick waited for a sink" });
    const report = await stopWithin10s(agg, "stop() waited (for its 120 s timeout) for records whose only sink was removed");
    const tick = report.sources.tick!;
    expect(tick.waiting).toBeGreaterThan(0);
    expect(tick.settled).toBe(tick.admitted);
    expect(tick.emitted).toBe(tick.admitted + tick.waiting);
    expect(report.sinks.other!.received).toBe(0);
    expect(report.timedOut).toBe(true);
  });
});
