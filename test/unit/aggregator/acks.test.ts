// Acks: a source's watermark moves only over records every sink has settled, including through the dead-letter hop.
import { describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";
import { numbered } from "../../helpers/sinks.js";

describe("acknowledgement watermark", () => {
  it("waits for the slowest sink and for the dead-letter sink to deliver", async () => {
    const fast = new MemorySink({ name: "fast" });
    const es = new MemorySink({ name: "es" }).rejectWhen((r) => r.n === 3, "bad");
    const dlq = new MemorySink({ name: "dlq" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 10, maxWaitMs: 0 } })
      .addSink(fast)
      .addSink(es, { deadLetter: "dlq" })
      .addSink(dlq);
    await agg.start();
    await agg.write(numbered(10), { source: "app" });
    await fast.waitForCount(10);
    await es.waitForCount(9);
    // record 3 sits in the blocked dead-letter sink: only 0..2 are settled everywhere
    await waitFor(() => agg.metrics().sources.app!.settled === 3, { message: () => `settled 3, got ${agg.metrics().sources.app!.settled}` });
    dlq.unblock();
    await waitFor(() => agg.metrics().sources.app!.settled === 10, { message: "all 10 settled after the DLQ delivered" });
    const report = await agg.stop();
    expect(report.sources.app).toMatchObject({ emitted: 10, admitted: 10, settled: 10 });
    expect(dlq.records.map((r) => r.n)).toEqual([3]);
  });

  it("counts records dropped by policy as settled (they will never be delivered)", async () => {
    const m = new MemorySink({ name: "m" }).block();
    const agg = new Aggregator({ batch: { maxRecords: 5, maxWaitMs: 0 } }).addSink(m, { queue: { maxRecords: 5, whenFull: "dropNewest" } });
    await agg.start();
    await agg.write(numbered(8), { source: "app" });
    // 0..4 held (blocked), 5..7 dropped: the watermark cannot pass 0 until the held ones settle
    expect(agg.metrics().sources.app!.settled).toBe(0);
    m.unblock();
    await waitFor(() => agg.metrics().sources.app!.settled === 8, { message: "8 settled" });
    await agg.stop();
  });
});
