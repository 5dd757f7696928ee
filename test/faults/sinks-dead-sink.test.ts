// Two sinks fed the same stream; one is dead for 60 s of simulated time and uses dropNewest. The healthy one must
// lose nothing and never wait; the dead one's losses must be counted exactly. In-process sinks and fake timers
// (the engine's backoff and batching follow them), with the backoff's jitter seeded so the figures repeat.
import { afterEach, describe, expect, it, vi } from "vitest";
import { Aggregator, MemorySink, Outcome, type Batch, type SendResult, type Sink } from "../../src/index.js";
import { SequenceGenerator, SequenceTracker, recordScenario } from "../helpers/sequence.js";

const STEP_MS = 500;
const PER_STEP = 100;
const STEPS = 180; // 90 s of simulated time, 18k records
const DEAD_FROM = 5_250; // between two writes, so "before" and "during" are unambiguous
const DEAD_FOR = 60_000;

/** A destination that refuses every send while the simulated clock is inside its outage, and records seqs otherwise. */
class OutageSink implements Sink {
  readonly received = new SequenceTracker();
  refused = 0;
  constructor(
    readonly name: string,
    private readonly from: number,
    private readonly until: number,
  ) {}

  send(batch: Batch): SendResult {
    const now = Date.now();
    if (now >= this.from && now < this.until) {
      this.refused++;
      return Outcome.retry("connection_refused");
    }
    for (const r of batch.records) this.received.add(r.seq as number);
    return undefined;
  }
}

/** Deterministic stand-in for Math.random (backoff jitter), so every run takes the same path. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("two sinks, one dead for 60 s (simulated) with dropNewest", () => {
  it("the healthy sink gets every record on time; the dead one's drops are counted exactly", async () => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockImplementation(seeded(42));
    const t0 = Date.now();
    const healthy = new MemorySink({ name: "healthy" });
    const dead = new OutageSink("dead", t0 + DEAD_FROM, t0 + DEAD_FROM + DEAD_FOR);
    const agg = new Aggregator({ batch: { maxRecords: 500, maxWaitMs: 50 }, retry: { baseDelayMs: 100, maxDelayMs: 2_000 } })
      .addSink(healthy)
      .addSink(dead, { queue: { maxRecords: 2_000, whenFull: "dropNewest" } });
    let dropEvents = 0;
    agg.on("drop", (e) => {
      expect(e).toMatchObject({ sink: "dead", reason: "queueFull" });
      dropEvents += e.count;
    });
    await agg.start();

    const gen = new SequenceGenerator();
    let lateAtHealthy = 0;
    for (let step = 0; step < STEPS; step++) {
      // write() resolving with no clock movement shows that nothing held the producer back.
      await agg.write(gen.records(PER_STEP));
      await vi.advanceTimersByTimeAsync(STEP_MS);
      // One batch wait later, the healthy sink has everything written so far, outage or not.
      if (healthy.count !== gen.sent) lateAtHealthy++;
    }
    const stopping = agg.stop({ timeoutMs: 60_000 });
    await vi.advanceTimersByTimeAsync(10_000);
    const report = await stopping;

    const h = new SequenceTracker();
    h.addAll(healthy.records.map((r) => r.seq as number));
    const hr = recordScenario(h.report("two sinks: healthy one while the other is dead 60s", gen.sentSeqs(), { lateSteps: lateAtHealthy }));
    const d = report.sinks.dead!;
    const dr = recordScenario(
      dead.received.report("two sinks: dead 60s simulated, dropNewest", gen.sentSeqs(), {
        droppedQueueFull: d.dropped.queueFull ?? 0,
        delivered: d.delivered,
        pending: d.pending,
        refusedSends: dead.refused,
      }),
    );

    expect(lateAtHealthy).toBe(0);
    expect(hr).toMatchObject({ sent: STEPS * PER_STEP, unique: STEPS * PER_STEP, duplicates: 0, missing: 0, unexpected: 0 });
    expect(report.sinks.healthy).toMatchObject({ received: STEPS * PER_STEP, delivered: STEPS * PER_STEP, droppedTotal: 0, pending: 0 });

    // The outage was real and long: sends were refused, and most of what arrived meanwhile could not be kept.
    expect(dead.refused).toBeGreaterThan(10);
    expect(d.dropped.queueFull).toBeGreaterThan(5_000);
    // Exact accounting: every record is delivered, dropped (counted, announced) or pending, and what the dead sink's
    // destination is missing is exactly what was dropped.
    expect(d.received).toBe(STEPS * PER_STEP);
    expect(d.dropped.queueFull! + d.delivered + d.pending).toBe(STEPS * PER_STEP);
    expect(d.droppedTotal).toBe(d.dropped.queueFull);
    expect(d.pending).toBe(0);
    expect(dropEvents).toBe(d.dropped.queueFull);
    expect(dr).toMatchObject({ duplicates: 0, unexpected: 0, unique: d.delivered, missing: d.dropped.queueFull });
    // dropNewest: the queue kept the oldest records of the outage, so the loss is one contiguous run of seqs
    // (those that arrived while the queue was full), not scattered.
    expect(dr.missingRanges).toMatch(/^\d+-\d+$/);
  });
});
