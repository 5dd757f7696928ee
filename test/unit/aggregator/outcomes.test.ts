// Per-record outcomes: rejected → dead letter with reason; retry → resent alone; delivered → never resent.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Aggregator, MemorySink, Outcome, SinkError, StateError, type AggregatorError } from "../../../src/index.js";
import { ScriptedSink, numbered } from "../../helpers/sinks.js";

describe("per-record outcomes", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("dead-letters record 3, resends only record 5, resends nothing else", async () => {
    const sink = new ScriptedSink("es", (batch, call) => {
      if (call > 0) return undefined;
      return Outcome.perRecord(
        batch.records.map((r) =>
          r.n === 3 ? Outcome.reject("mapper_parsing_exception: failed to parse [n]") : r.n === 5 ? Outcome.retry("http_429") : Outcome.delivered,
        ),
      );
    });
    const dlq = new MemorySink({ name: "dlq" });
    const agg = new Aggregator()
      .addSink(sink, { deadLetter: "dlq", batch: { maxRecords: 8, maxWaitMs: 0 }, retry: { baseDelayMs: 10 } })
      .addSink(dlq, { batch: { maxWaitMs: 0 } });
    await agg.start();
    await agg.write(numbered(8));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [5]]);
    expect(sink.calls[1]!.attempt).toBe(2);
    expect(dlq.records.map((r) => r.n)).toEqual([3]);
    expect(dlq.records[0]!.dead_letter).toMatchObject({
      sink: "es",
      reason: "mapper_parsing_exception: failed to parse [n]",
      attempts: 1,
    });
    const report = await agg.stop();
    expect(report.sinks.es).toMatchObject({ received: 8, delivered: 7, deadLettered: 1, retried: 1, pending: 0, droppedTotal: 0 });
    // the dead-letter sink receives only dead letters, not the fan-out
    expect(report.sinks.dlq).toMatchObject({ received: 1, delivered: 1 });
  });

  it("a wrong number of outcomes is a coded sink error and the batch is retried whole", async () => {
    const sink = new ScriptedSink("s", (_b, call) => (call === 0 ? Outcome.perRecord([Outcome.delivered]) : undefined));
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 3, maxWaitMs: 0 }, retry: { baseDelayMs: 1 } });
    const codes: string[] = [];
    agg.on("sink:error", (e) => codes.push(e.error.code));
    await agg.start();
    await agg.write(numbered(3));
    await vi.advanceTimersByTimeAsync(100);
    expect(codes).toEqual(["ERR_SINK_PROTOCOL"]);
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1, 2], [0, 1, 2]]);
    await agg.stop();
  });

  it.each([
    ["true", true],
    ["a string", "ok"],
    ["a number", 1],
    ["a status getter that throws", { get status(): string { throw new Error("boom"); } }],
    ["an unknown status", { status: "Delivered" }],
    ["outcomes that are not an array", { outcomes: "all good" }],
  ])("a send that returns %s is a coded sink error and the batch is retried, not stranded", async (_title, bad) => {
    const sink = new ScriptedSink("s", (_b, call) => (call === 0 ? (bad as never) : undefined));
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 2, maxWaitMs: 0 }, retry: { baseDelayMs: 1 } });
    const codes: string[] = [];
    agg.on("sink:error", (e) => codes.push(e.error.code));
    await agg.start();
    await agg.write(numbered(2));
    await vi.advanceTimersByTimeAsync(100);
    expect(codes).toEqual(["ERR_SINK_PROTOCOL"]);
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1], [0, 1]]);
    const report = await agg.stop();
    expect(report.sinks.s).toMatchObject({ received: 2, delivered: 2, retried: 2, pending: 0, droppedTotal: 0 });
  });

  it("a per-record outcome with an unknown status is retried and reported, not dropped as rejected", async () => {
    const sink = new ScriptedSink("s", (_b, call) =>
      call === 0 ? ({ outcomes: [Outcome.delivered, "delivered", { status: "Delivered" }, { get status(): string { throw new Error("x"); } }] } as never) : undefined,
    );
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 4, maxWaitMs: 0 }, retry: { baseDelayMs: 1 } });
    const codes: string[] = [];
    agg.on("sink:error", (e) => codes.push(e.error.code));
    await agg.start();
    await agg.write(numbered(4));
    await vi.advanceTimersByTimeAsync(100);
    expect(codes).toEqual(["ERR_SINK_PROTOCOL"]);
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1, 2, 3], [1, 2, 3]]);
    const report = await agg.stop();
    expect(report.sinks.s).toMatchObject({ received: 4, delivered: 4, retried: 3, droppedTotal: 0, pending: 0 });
  });

  it("a thrown non-retryable SinkError rejects the batch; a thrown plain error retries it", async () => {
    const { SinkError } = await import("../../../src/index.js");
    const sink = new ScriptedSink("s", (batch, call) => {
      if (call === 0) throw new SinkError("ERR_SINK_REJECTED", "401 unauthorized", { retryable: false, statusCode: 401 });
      if (call === 1) throw new Error("socket hang up");
      return undefined;
    });
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 2, maxWaitMs: 0 }, retry: { baseDelayMs: 1 } });
    await agg.start();
    await agg.write(numbered(2));
    await vi.advanceTimersByTimeAsync(0);
    await agg.write(numbered(2, 2));
    await vi.advanceTimersByTimeAsync(100);
    const report = await agg.stop();
    expect(report.sinks.s).toMatchObject({ received: 4, delivered: 2, dropped: { rejected: 2 }, retried: 2 });
    expect(sink.calls.map((c) => c.ids)).toEqual([[0, 1], [2, 3], [2, 3]]);
  });

  it("a thrown library error of another class keeps its class and code in sink:error, and the batch is retried", async () => {
    const thrown = new StateError("ERR_INVALID_STATE", "The sink is closed");
    const sink = new ScriptedSink("s", (_batch, call) => {
      if (call === 0) throw thrown;
      return undefined;
    });
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 2, maxWaitMs: 0 }, retry: { baseDelayMs: 1 } });
    const errors: AggregatorError[] = [];
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    await agg.write(numbered(2));
    await vi.advanceTimersByTimeAsync(100);
    const report = await agg.stop();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StateError);
    expect(errors[0]).not.toBeInstanceOf(SinkError);
    expect(errors[0]).toMatchObject({ code: "ERR_INVALID_STATE", message: "The sink is closed", sink: "s", cause: thrown });
    expect(report.sinks.s).toMatchObject({ received: 2, delivered: 2, retried: 2 });
  });
});

describe("dead-letter accounting", () => {
  afterEach(() => vi.useRealTimers());

  it("counts a record dead-lettered only once the dead-letter sink has it; a stuck DLQ leaves it pending, not both", async () => {
    const main = new MemorySink({ name: "main" }).rejectWhen((r) => (r.n as number) % 10 === 0, "bad");
    const dlq = new MemorySink({ name: "dlq" }).neverAnswer();
    const agg = new Aggregator({ batch: { maxWaitMs: 1 } }).addSink(main, { deadLetter: "dlq" }).addSink(dlq);
    await agg.start();
    await agg.write(numbered(100));
    const r = await agg.stop({ timeoutMs: 300 });
    expect(r.sinks.main).toMatchObject({ received: 100, delivered: 90, deadLettered: 0, droppedTotal: 0, pending: 10 });
    expect(r.sinks.main!.delivered + r.sinks.main!.deadLettered + r.sinks.main!.droppedTotal + r.sinks.main!.pending).toBe(100);
  });

  it("a record the dead-letter sink rejects too is dropped as deadLetterFailed, counted and announced", async () => {
    const main = new MemorySink({ name: "main" }).rejectWhen((r) => (r.n as number) % 10 === 0, "bad");
    const dlq = new MemorySink({ name: "dlq" }).rejectWhen(() => true, "dlq full");
    const agg = new Aggregator({ batch: { maxWaitMs: 1 } }).addSink(main, { deadLetter: "dlq" }).addSink(dlq);
    const drops: string[] = [];
    agg.on("drop", (e) => drops.push(`${e.sink}:${e.reason}:${e.count}`));
    await agg.start();
    await agg.write(numbered(100));
    const r = await agg.stop({ timeoutMs: 5_000 });
    expect(r.sinks.main).toMatchObject({ received: 100, delivered: 90, deadLettered: 0, dropped: { deadLetterFailed: 10 }, pending: 0 });
    expect(drops).toContain("main:deadLetterFailed:10");
  });
});
