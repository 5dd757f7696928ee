// Fairness: producers are admitted round-robin, so a chatty source cannot starve a quiet one of queue room.
import { describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { numbered } from "../../helpers/sinks.js";

describe("fair admission", () => {
  it("a quiet source's records get in within a few turns while a chatty one has 20k waiting", async () => {
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 0 } }).addSink(mem, { queue: { maxRecords: 200, whenFull: "block" } });
    await agg.start();
    const chatty = agg.write(numbered(20_000), { source: "chatty" });
    const quiet = agg.write(numbered(100, 1_000_000), { source: "quiet" });
    // Both are parked behind the full queue now; the chatty one arrived first with 100× more.
    expect(agg.metrics().sources.quiet!.waiting).toBe(100);
    mem.unblock();
    await Promise.all([chatty, quiet]);
    await agg.stop();
    const lastQuiet = mem.records.findLastIndex((r) => (r.n as number) >= 1_000_000);
    // Round-robin: the 100 quiet records are through long before the 20k chatty ones (FIFO would put them last).
    expect(lastQuiet).toBeGreaterThan(0);
    expect(lastQuiet).toBeLessThan(2_000);
    expect(mem.count).toBe(20_100);
  });

  // Every refill of the queue is one source's turn, whichever number of sources takes turns.
  it.each([2, 3, 4])("%i sources behind a full queue take turns at it", async (n) => {
    const mem = new MemorySink({ name: "mem" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 10, maxWaitMs: 0 } }).addSink(mem, { queue: { maxRecords: 10, whenFull: "block" } });
    await agg.start();
    const writes = Array.from({ length: n }, (_, s) => agg.write(numbered(300, s * 1_000), { source: `s${s}` }));
    mem.unblock();
    await Promise.all(writes);
    await agg.stop();
    const shares = Array.from({ length: n }, () => 0);
    for (const r of mem.records.slice(0, 300)) shares[Math.floor((r.n as number) / 1_000)]!++;
    // A fair share is 300 / n; waiting for the others to finish first would leave a source with about none.
    for (const share of shares) expect(share, `shares of the first 300: ${shares.join(" ")}`).toBeGreaterThanOrEqual(300 / n / 2);
    expect(mem.count).toBe(300 * n);
  });
});

describe("a record waiting for room", () => {
  it("meets each filter once, and a throwing one counts one error per record", async () => {
    const slow = new MemorySink({ name: "slow" }).block();
    let calls = 0;
    const agg = new Aggregator({ batch: { maxRecords: 1, maxWaitMs: 0 } })
      .addSink(slow, { queue: { maxRecords: 1, whenFull: "block" } })
      .addSink(new MemorySink({ name: "judged" }), {
        filter: () => {
          calls++;
          throw new Error("cannot judge");
        },
      });
    await agg.start();
    const written = agg.write(numbered(10));
    slow.unblock();
    await written;
    await slow.waitForCount(10, { timeout: 5_000 });
    expect(calls).toBe(10);
    expect(agg.metrics().sinks.judged).toMatchObject({ filtered: 10, filterErrors: 10 });
    await agg.stop();
  });
});
