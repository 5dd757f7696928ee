// SinkPipeline: detaching held records by the recent pass rate; records that reach a closed lane; sends that come back
// after the lane was abandoned.
import { describe, expect, it } from "vitest";
import { resolveAggregatorOptions, resolveSinkOptions } from "../../../src/options.js";
import { Entry } from "../../../src/pipeline/entry.js";
import { SinkPipeline, type PipelineHooks } from "../../../src/pipeline/sink-pipeline.js";
import type { DropReason } from "../../../src/events.js";
import type { SendResult, Sink } from "../../../src/sinks/sink.js";

const RECORD = '{"m":"a record of a frame"}';

/** `count` entries held in place in one frame, as the host holds records from a collector. */
function frameEntries(count: number): Entry[] {
  const frame = Buffer.from(Array.from({ length: count }, () => RECORD).join("\n"));
  const bytes = Buffer.byteLength(RECORD);
  return Array.from({ length: count }, (_, i) => new Entry(frame, bytes, undefined, i, undefined, i * (bytes + 1)));
}

const hooks: PipelineHooks = {
  delivered: () => undefined,
  dropped: () => undefined,
  retry: () => undefined,
  deadLetter: () => false,
  sinkError: () => undefined,
  capacity: () => undefined,
};

/** A sink that delivers until `down` is set, then holds every send until `release()`. */
function switchableSink(): Sink & { down: boolean; release(): void } {
  let releases: Array<() => void> = [];
  return {
    name: "errors-only",
    down: false,
    send() {
      if (!this.down) return;
      return new Promise<void>((resolve) => releases.push(resolve));
    },
    release() {
      for (const r of releases) r();
      releases = [];
    },
  };
}

/** Route entries the way the router does for a filtered lane: `passEvery`-th entry in, the rest counted as filtered. */
function route(pipeline: SinkPipeline, entries: Entry[], passEvery: number): Entry[] {
  const passed: Entry[] = [];
  for (let i = 0; i < entries.length; i++) {
    if (i % passEvery !== 0) {
      pipeline.counters.filtered++;
      continue;
    }
    entries[i]!.pending = 1;
    pipeline.accept(entries[i]!);
    passed.push(entries[i]!);
  }
  return passed;
}

/** A sending lane with a filter (it passes all; `route` plays the filter), batches of 100, one send at a time. */
function filteredLane(): { sink: ReturnType<typeof switchableSink>; pipeline: SinkPipeline } {
  const sink = switchableSink();
  const options = resolveSinkOptions(
    // Detaching on its own: with compression, a stalled lane's records would leave their frames by being packed.
    { filter: () => true, batch: { maxRecords: 100, maxWaitMs: 0 }, concurrency: 1, queue: { compress: false } },
    resolveAggregatorOptions(undefined),
    undefined,
  );
  const pipeline = new SinkPipeline(sink, options, hooks);
  pipeline.startSending();
  return { sink, pipeline };
}

describe("SinkPipeline: a filtered lane detaches what it holds by its recent pass rate", () => {
  it("a lane that passed everything for long, then 1 %, detaches once its sink falls behind", async () => {
    const { sink, pipeline } = filteredLane();

    // A long dense history: 200,000 records, every one passed and delivered.
    for (let k = 0; k < 20; k++) {
      route(pipeline, frameEntries(10_000), 1);
      await pipeline.drain();
    }
    expect(pipeline.counters.delivered).toBe(200_000);

    // Now the filter passes 1 record in 100 and the sink stops answering: 600 held (one batch of 100 in flight).
    sink.down = true;
    const held = route(pipeline, frameEntries(60_000), 100);
    expect(held).toHaveLength(600);
    await new Promise((r) => setImmediate(r));
    const waiting = held.slice(100);
    // Over its lifetime the lane passed 200,600 of 259,400 records (77 %), lately 1 %: it is sparse now, so the 500
    // waiting records keep text of their own rather than 60,000-record frames.
    expect(waiting.filter((e) => e.hasBytes)).toHaveLength(0);
    expect(waiting.every((e) => e.json === RECORD)).toBe(true);

    sink.down = false;
    sink.release();
    await pipeline.drain();
    expect(pipeline.counters.delivered).toBe(200_600);
  });

  it("a lane that passes most records keeps them in their frames while its sink is down", async () => {
    const { sink, pipeline } = filteredLane();
    sink.down = true;
    const held = route(pipeline, frameEntries(20_000), 2);
    expect(held).toHaveLength(10_000);
    await new Promise((r) => setImmediate(r));
    expect(held.filter((e) => e.hasBytes)).toHaveLength(10_000);
    sink.down = false;
    sink.release();
    await pipeline.drain();
    expect(pipeline.counters.delivered).toBe(10_000);
  });
});

describe("SinkPipeline after stop() closed it", () => {
  it("a record handed over late is counted as received and pending, and is not settled (its position is not committed)", () => {
    const options = resolveSinkOptions(undefined, resolveAggregatorOptions(undefined), undefined);
    const drops: string[] = [];
    const pipeline = new SinkPipeline(switchableSink(), options, { ...hooks, dropped: (_p, reason, entries) => drops.push(`${reason}:${entries.length}`) });
    pipeline.startSending();
    pipeline.abandon(); // stop()'s deadline
    const settled: number[] = [];
    const late = new Entry(RECORD, RECORD.length, { name: "src", settle: (seq) => settled.push(seq) }, 7);
    late.pending = 1;
    pipeline.accept(late);
    const report = pipeline.report();
    expect(report).toMatchObject({ received: 1, delivered: 0, droppedTotal: 0, pending: 1 });
    expect(report.received).toBe(report.delivered + report.deadLettered + report.droppedTotal + report.pending);
    expect(settled).toEqual([]);
    expect(late.pending).toBe(1);
    expect(drops).toEqual([]);
  });

  it("after removeSink() closed it, a late record is a counted sinkRemoved drop", () => {
    const options = resolveSinkOptions(undefined, resolveAggregatorOptions(undefined), undefined);
    const pipeline = new SinkPipeline(switchableSink(), options, hooks);
    pipeline.startSending();
    pipeline.abandon("sinkRemoved");
    const settled: number[] = [];
    const late = new Entry(RECORD, RECORD.length, { name: "src", settle: (seq) => settled.push(seq) }, 3);
    late.pending = 1;
    pipeline.accept(late);
    expect(pipeline.report()).toMatchObject({ received: 1, droppedTotal: 1, dropped: { sinkRemoved: 1 }, pending: 0 });
    expect(settled).toEqual([3]);
  });
});

/** Three entries of source "src" (seq 0, 1, 2) that record how each was settled. */
function tracked(): { entries: Entry[]; settled: string[] } {
  const settled: string[] = [];
  const target = { name: "src", settle: (seq: number, delivered: boolean) => settled.push(`${seq}:${delivered ? "delivered" : "settled"}`) };
  const entries = [0, 1, 2].map((seq) => {
    const e = new Entry(RECORD, RECORD.length, target, seq);
    e.pending = 1;
    return e;
  });
  return { entries, settled };
}

/**
 * A lane of batches of 3 whose sink answers `result`, but only after the lane was abandoned (by a removeSink() or
 * stop() deadline) meanwhile: the answer comes back to a closed lane.
 */
async function answerAfterAbandon(result: SendResult, dropReason?: DropReason) {
  const drops: string[] = [];
  let pipeline!: SinkPipeline;
  const sink: Sink = {
    name: "s",
    send() {
      pipeline.abandon(dropReason);
      return result;
    },
  };
  const options = resolveSinkOptions({ batch: { maxRecords: 3, maxWaitMs: 0 } }, resolveAggregatorOptions(undefined), undefined);
  pipeline = new SinkPipeline(sink, options, { ...hooks, dropped: (_p, reason, entries) => drops.push(`${reason}:${entries.length}`) });
  pipeline.startSending();
  const { entries, settled } = tracked();
  for (const e of entries) pipeline.accept(e);
  await new Promise((r) => setImmediate(r));
  return { report: pipeline.report(), drops, settled };
}

describe("SinkPipeline: a send that comes back after abandon()", () => {
  it("records the sink's per-record outcomes say it delivered are delivered, not dropped as sinkRemoved", async () => {
    const { report, drops, settled } = await answerAfterAbandon({ outcomes: [{ status: "delivered" }, { status: "delivered" }, { status: "delivered" }] }, "sinkRemoved");
    expect(report).toMatchObject({ received: 3, delivered: 3, droppedTotal: 0, dropped: {}, pending: 0 });
    expect(settled).toEqual(["0:delivered", "1:delivered", "2:delivered"]);
    expect(drops).toEqual([]);
  });

  it("the delivered ones of a mixed answer are delivered; the rest are dropped with the abandon's reason", async () => {
    const { report, drops, settled } = await answerAfterAbandon(
      { outcomes: [{ status: "delivered" }, { status: "rejected", reason: "bad" }, { status: "retry" }] },
      "sinkRemoved",
    );
    expect(report).toMatchObject({ received: 3, delivered: 1, droppedTotal: 2, dropped: { sinkRemoved: 2 }, pending: 0 });
    expect(settled).toEqual(["0:delivered", "1:settled", "2:settled"]);
    expect(drops).toEqual(["sinkRemoved:2"]);
  });

  it("after stop()'s abandon, per-record deliveries are settled (their positions may be committed); nothing else is", async () => {
    const all = await answerAfterAbandon({ outcomes: [{ status: "delivered" }, { status: "delivered" }, { status: "delivered" }] });
    expect(all.report).toMatchObject({ received: 3, delivered: 3, pending: 0 });
    expect(all.settled).toEqual(["0:delivered", "1:delivered", "2:delivered"]);
    const some = await answerAfterAbandon({ outcomes: [{ status: "retry" }, { status: "delivered" }, { status: "rejected", reason: "bad" }] });
    expect(some.report).toMatchObject({ received: 3, delivered: 1, droppedTotal: 0, pending: 2 });
    expect(some.settled).toEqual(["1:delivered"]);
    expect(some.drops).toEqual([]);
  });

  it("removeSink()'s abandon with only in-flight records announces one drop of them when they come back, none of 0", async () => {
    const drops: string[] = [];
    const options = resolveSinkOptions({ batch: { maxRecords: 3, maxWaitMs: 0 } }, resolveAggregatorOptions(undefined), undefined);
    const never: Sink = { name: "s", send: () => new Promise<void>(() => undefined) };
    const pipeline = new SinkPipeline(never, options, { ...hooks, dropped: (_p, reason, entries) => drops.push(`${reason}:${entries.length}`) });
    pipeline.startSending();
    for (const e of tracked().entries) pipeline.accept(e);
    await new Promise((r) => setImmediate(r));
    expect(pipeline.snapshot().inFlightBatches).toBe(1);
    pipeline.abandon("sinkRemoved");
    // The aborted send comes back at once.
    await new Promise((r) => setImmediate(r));
    expect(drops).toEqual(["sinkRemoved:3"]);
    expect(pipeline.report()).toMatchObject({ received: 3, dropped: { sinkRemoved: 3 }, droppedTotal: 3, pending: 0 });
  });

  it("only the first abandon counts: stop()'s leaves what is held pending, a later removeSink() deadline drops nothing", () => {
    const drops: string[] = [];
    const options = resolveSinkOptions(undefined, resolveAggregatorOptions(undefined), undefined);
    const pipeline = new SinkPipeline(switchableSink(), options, { ...hooks, dropped: (_p, reason, entries) => drops.push(`${reason}:${entries.length}`) });
    const { entries, settled } = tracked();
    for (const e of entries) pipeline.accept(e); // not open yet: they wait
    pipeline.abandon();
    pipeline.abandon("sinkRemoved");
    expect(pipeline.report()).toMatchObject({ received: 3, droppedTotal: 0, dropped: {}, pending: 3 });
    expect(settled).toEqual([]);
    expect(drops).toEqual([]);
  });
});
