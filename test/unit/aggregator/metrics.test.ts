// metrics() is a typed snapshot; prometheus() exposes the same numbers as text.
import { describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { numbered } from "../../helpers/sinks.js";

describe("metrics", () => {
  it("counts per sink and per source, and renders Prometheus text", async () => {
    const m = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(m, { queue: { maxRecords: 10, whenFull: "dropNewest" } });
    await agg.start();
    m.block();
    await agg.write(numbered(25), { source: "app" });
    const snap = agg.metrics();
    expect(snap.state).toBe("running");
    expect(snap.sinks.mem).toMatchObject({ received: 25, droppedTotal: 15, dropped: { queueFull: 15 }, queueRecords: 10 });
    expect(snap.sources.app).toMatchObject({ kind: "write", emitted: 25, admitted: 25 });
    const text = agg.prometheus();
    expect(text).toContain('# TYPE child_log_agg_sink_dropped_total counter');
    expect(text).toContain('child_log_agg_sink_dropped_total{sink="mem",reason="queueFull"} 15');
    expect(text).toContain('child_log_agg_sink_queue_records{sink="mem"} 10');
    expect(text).toContain('child_log_agg_source_emitted_total{source="app"} 25');
    // every sample line is `name{labels} number`
    for (const line of text.trim().split("\n")) {
      if (!line.startsWith("#")) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? -?[0-9.e+]+$/);
    }
    m.unblock();
    const report = await agg.stop();
    expect(report.sinks.mem).toMatchObject({ delivered: 10, droppedTotal: 15 });
  });
});
