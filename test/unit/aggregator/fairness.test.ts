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
});
