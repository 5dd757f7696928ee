// SinkPipeline: detaching held records by the recent pass rate; records that reach a closed lane.
import { describe, expect, it } from "vitest";
import { resolveAggregatorOptions, resolveSinkOptions } from "../../../src/options.js";
import { Entry } from "../../../src/pipeline/entry.js";
import { SinkPipeline, type PipelineHooks } from "../../../src/pipeline/sink-pipeline.js";
import type { Sink } from "../../../src/sinks/sink.js";

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
    { filter: () => true, batch: { maxRecords: 100, maxWaitMs: 0 }, concurrency: 1 },
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
