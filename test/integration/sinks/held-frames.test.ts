// Records from a collector point into its channel frames (100-250 KB each). A lane that holds a few records of each
// frame for long (a sparse filter whose sink is down, items retried on their own) must not keep whole frames alive
// through them: those entries are detached (their own text), while records that flow are never copied.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Aggregator, CommandSource, Outcome, type Batch, type RecordOutcome, type SendResult } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

const fixture = fileURLToPath(new URL("../../fixtures/emit-lines.mjs", import.meta.url));
const LINES = 20_000;

interface HeldView {
  readonly hasBytes: boolean;
  readonly json: string;
}
const entriesOf = (batch: Batch): readonly HeldView[] => (batch as unknown as { entries: readonly HeldView[] }).entries;

/**
 * A sink that delivers everything and counts the entries it got still held as frame bytes, apart from those also
 * routed to the sparse lane (shared entries: that lane may detach them first).
 */
function flowingSink(name: string, shared: (n: number) => boolean) {
  const seen = { records: 0, own: 0, ownWithBytes: 0 };
  return {
    seen,
    sink: {
      name,
      send(batch: Batch): SendResult {
        for (const e of entriesOf(batch)) {
          const n = (JSON.parse(e.json) as { n?: number }).n;
          if (n !== undefined && shared(n)) continue;
          seen.own++;
          if (e.hasBytes) seen.ownWithBytes++;
        }
        seen.records += batch.length;
        return Outcome.delivered;
      },
    },
  };
}

const source = (): CommandSource =>
  new CommandSource({ name: "app", command: process.execPath, args: [fixture, String(LINES), "0", "hold"], parser: "json" });

describe("entries a lane holds apart from their frames", () => {
  it("a sparse filtered lane whose sink is down detaches what it holds; the lane that flows copies nothing", async () => {
    const alerted = (n: number): boolean => n % 50 === 0;
    const main = flowingSink("main", alerted);
    // Down until the lane holds all its records; then it recovers: what it delivers, and whether any still pointed
    // into a frame.
    const late = { sent: new Set<number>(), attached: 0 };
    let up = false;
    const alerts = {
      name: "alerts",
      send(batch: Batch): SendResult {
        if (!up) return Outcome.retry("down");
        for (const e of entriesOf(batch)) {
          if (e.hasBytes) late.attached++;
          late.sent.add((JSON.parse(e.json) as { n: number }).n);
        }
        return Outcome.delivered;
      },
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 10 }, retry: { baseDelayMs: 5, maxDelayMs: 20 } })
      .addSource(source())
      .addSink(main.sink)
      // 1 record in 50 (400 in all): more than the 256 a sparse lane holds before it detaches them.
      .addSink(alerts, { filter: (r) => typeof r.n === "number" && alerted(r.n) });
    await agg.start();
    try {
      await waitFor(() => main.seen.records >= LINES + LINES / 10 && agg.metrics().sinks.alerts!.queueRecords === LINES / 50, {
        timeout: 30_000,
        message: () => `main got ${main.seen.records}, alerts holds ${agg.metrics().sinks.alerts!.queueRecords}`,
      });
      up = true;
      await waitFor(() => late.sent.size === LINES / 50, { timeout: 30_000, message: () => `alerts delivered ${late.sent.size} of ${LINES / 50} held records` });
      expect(late.attached, "held entries still pointing into frames").toBe(0);
      expect([...late.sent].every(alerted)).toBe(true);
      // The lane that keeps up detaches nothing of its own: the records only it got were all still frame bytes.
      expect(main.seen.own).toBe(LINES + LINES / 10 - LINES / 50);
      expect(main.seen.ownWithBytes).toBe(main.seen.own);
    } finally {
      await agg.stop({ timeoutMs: 2_000 });
    }
  });

  it("records already waiting out a backoff are detached too once the lane turns sparse", async () => {
    // The filter passes every record at first (n < 300), then 1 in 50: the first batch fails while the lane is
    // still dense, so it waits out its 2 s backoff attached to its frames, until the lane holds more than 256 of a
    // sparse stream and detaches everything it holds. Then the sink takes it all.
    const firstBatch = new Set<number>();
    const delivered = new Map<number, boolean>(); // n → still frame bytes when delivered
    let sends = 0;
    const alerts = {
      name: "alerts",
      send(batch: Batch): SendResult {
        const ns = entriesOf(batch).map((e) => (JSON.parse(e.json) as { n: number }).n);
        if (sends++ === 0) {
          for (const n of ns) firstBatch.add(n);
          return Outcome.retry("down", 2_000);
        }
        entriesOf(batch).forEach((e, i) => delivered.set(ns[i]!, e.hasBytes));
        return Outcome.delivered;
      },
    };
    const passes = (n: number): boolean => n < 300 || n % 50 === 0;
    const expected = Array.from({ length: LINES }, (_, n) => n).filter(passes).length;
    const agg = new Aggregator({ batch: { maxWaitMs: 10 }, retry: { baseDelayMs: 5, maxDelayMs: 2_000 } })
      .addSource(source())
      .addSink(flowingSink("main", passes).sink)
      .addSink(alerts, { filter: (r) => typeof r.n === "number" && passes(r.n) });
    await agg.start();
    try {
      await waitFor(() => delivered.size === expected, { timeout: 30_000, message: () => `alerts delivered ${delivered.size} of ${expected}` });
      expect(firstBatch.size).toBeGreaterThan(0);
      expect([...firstBatch].filter((n) => delivered.get(n) !== false), "first batch still pointing into frames").toEqual([]);
    } finally {
      await agg.stop({ timeoutMs: 2_000 });
    }
  });

  it("items retried on their own are detached; the rest of their batch is delivered as frame bytes", async () => {
    const attempts = new Map<number, boolean[]>(); // n → hasBytes at each attempt
    const sink = {
      name: "es-like",
      send(batch: Batch): SendResult {
        const outcomes: RecordOutcome[] = [];
        for (const e of entriesOf(batch)) {
          const rec = JSON.parse(e.json) as { n?: number };
          if (rec.n === undefined) {
            outcomes.push(Outcome.delivered); // stderr progress lines
            continue;
          }
          const seen = attempts.get(rec.n) ?? [];
          seen.push(e.hasBytes);
          attempts.set(rec.n, seen);
          // Every 100th record is refused once (a per-item 429), everything else is stored.
          outcomes.push(rec.n % 100 === 0 && seen.length === 1 ? Outcome.retry("item_429") : Outcome.delivered);
        }
        return { outcomes };
      },
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 10 }, retry: { baseDelayMs: 5, maxDelayMs: 20 } }).addSource(source()).addSink(sink);
    await agg.start();
    try {
      await waitFor(() => attempts.size === LINES && [...attempts].every(([n, a]) => (n % 100 === 0 ? a.length === 2 : a.length === 1)), {
        timeout: 30_000,
        message: () => `saw ${attempts.size} of ${LINES} records, ${[...attempts].filter(([n, a]) => n % 100 === 0 && a.length < 2).length} refused items not retried yet`,
      });
      for (const [n, a] of attempts) {
        if (n % 100 === 0) expect(a, `record ${n}: first attempt from its frame, the retry detached`).toEqual([true, false]);
        else expect(a, `record ${n}`).toEqual([true]);
      }
    } finally {
      await agg.stop({ timeoutMs: 2_000 });
    }
  });
});
