// metrics() is a typed snapshot; prometheus() exposes the same numbers as text.
import { describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { toPrometheus, type MetricsSnapshot } from "../../../src/report.js";
import { numbered } from "../../helpers/sinks.js";

/** An open sink's snapshot that has received and delivered `records`, with the transport counters given. */
function sinkSnapshot(records: number, transport: Record<string, number>): MetricsSnapshot["sinks"][string] {
  return {
    received: records,
    delivered: records,
    deadLettered: 0,
    dropped: {},
    droppedTotal: 0,
    retried: 0,
    filtered: 0,
    pending: 0,
    queueRecords: 0,
    queueBytes: 0,
    queueCompressedRecords: 0,
    queueCompressedBytes: 0,
    queueCompressedTotal: 0,
    inFlightBatches: 0,
    concurrencyLimit: 1,
    sendErrors: 0,
    filterErrors: 0,
    state: "open",
    transport,
  };
}

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

  it("exports collector and transport counters as `_total` counters in snake case, levels as gauges, latency as a histogram", () => {
    const source = { emitted: 1, admitted: 1, settled: 1, linesRead: 1, bytesRead: 1, parseErrors: 0, restarts: 0, waiting: 0 };
    const snap: MetricsSnapshot = {
      state: "running",
      uptimeMs: 1_000,
      dropped: {},
      sources: { app: { ...source, kind: "file", state: "running", pid: 1, collector: { filesOpen: 2, droppedKeys: 3, gelfChunkInvalid: 1 } } },
      sinks: {
        es: sinkSnapshot(4, {
          requests: 4,
          status_200: 4,
          max_request_bytes: 1024,
          records_resent: 2,
          records_resend_pending: 3,
          latency_ms_le_1: 1,
          latency_ms_le_5: 3,
          latency_ms_le_inf: 4,
          latency_ms_sum: 12.5,
          // MemorySink's levels; and three spellings of one name, of which the first is kept.
          in_flight: 1,
          held_records: 7,
          "req-count": 1,
          reqCount: 2,
          req_count: 3,
        }),
      },
    };
    const text = toPrometheus(snap);
    const lines = text.trim().split("\n");
    const typeOf = (name: string) => lines.find((l) => l.startsWith(`# TYPE child_log_agg_${name} `))?.split(" ")[3];
    expect(typeOf("collector_files_open")).toBe("gauge");
    expect(typeOf("collector_dropped_keys_total")).toBe("counter");
    expect(typeOf("collector_gelf_chunk_invalid_total")).toBe("counter");
    expect(typeOf("sink_transport_requests_total")).toBe("counter");
    expect(typeOf("sink_transport_status_200_total")).toBe("counter");
    expect(typeOf("sink_transport_max_request_bytes")).toBe("gauge");
    expect(typeOf("sink_transport_records_resent_total")).toBe("counter");
    expect(typeOf("sink_transport_records_resend_pending")).toBe("gauge");
    expect(typeOf("sink_transport_latency_ms")).toBe("histogram");
    expect(typeOf("sink_transport_in_flight")).toBe("gauge");
    expect(typeOf("sink_transport_held_records")).toBe("gauge");
    expect(lines.filter((l) => l.startsWith("child_log_agg_sink_transport_req_count_total"))).toEqual([
      'child_log_agg_sink_transport_req_count_total{sink="es"} 1',
    ]);
    const histogram = lines.filter((l) => l.startsWith("child_log_agg_sink_transport_latency_ms"));
    expect(histogram).toEqual([
      'child_log_agg_sink_transport_latency_ms_bucket{sink="es",le="1"} 1',
      'child_log_agg_sink_transport_latency_ms_bucket{sink="es",le="5"} 3',
      'child_log_agg_sink_transport_latency_ms_bucket{sink="es",le="+Inf"} 4',
      'child_log_agg_sink_transport_latency_ms_sum{sink="es"} 12.5',
      'child_log_agg_sink_transport_latency_ms_count{sink="es"} 4',
    ]);
    // Every counter family is named `…_total`, and no name keeps upper-case letters.
    for (const l of lines.filter((x) => x.startsWith("# TYPE "))) {
      const [, , name, type] = l.split(" ");
      expect(name).toMatch(/^[a-z_][a-z0-9_]*$/);
      if (type === "counter") expect(name).toMatch(/_total$/);
    }
  });

  it("a family has one type: a custom sink's gauge named bar_total and another sink's counter bar keep the first", () => {
    const snap: MetricsSnapshot = {
      state: "running",
      uptimeMs: 0,
      dropped: {},
      sources: {},
      sinks: { a: sinkSnapshot(0, { bar_total: 5 }), b: sinkSnapshot(0, { bar: 7 }) },
    };
    const lines = toPrometheus(snap, "child_log_agg", new Map([["a", new Set(["bar_total"])]])).trim().split("\n");
    expect(lines.filter((l) => l.includes("transport_bar_total") && !l.startsWith("# HELP"))).toEqual([
      "# TYPE child_log_agg_sink_transport_bar_total gauge",
      'child_log_agg_sink_transport_bar_total{sink="a"} 5',
    ]);
  });

  it("a custom sink's latency buckets without the +Inf one are counters: the text format requires a histogram to have it", () => {
    const snap: MetricsSnapshot = {
      state: "running",
      uptimeMs: 0,
      dropped: {},
      sources: {},
      sinks: { custom: sinkSnapshot(0, { latency_ms_le_10: 2, latency_ms_le_100: 5, latency_ms_sum: 80 }) },
    };
    const lines = toPrometheus(snap).trim().split("\n");
    expect(lines.filter((l) => l.includes("latency_ms") && !l.startsWith("#"))).toEqual([
      'child_log_agg_sink_transport_latency_ms_le_10_total{sink="custom"} 2',
      'child_log_agg_sink_transport_latency_ms_le_100_total{sink="custom"} 5',
      'child_log_agg_sink_transport_latency_ms_sum_total{sink="custom"} 80',
    ]);
    expect(lines.some((l) => l.startsWith("# TYPE") && l.endsWith(" histogram"))).toBe(false);
  });

  it("a custom sink's key with a line feed or a backslash is escaped in the HELP text: every line still parses", () => {
    const snap: MetricsSnapshot = {
      state: "running",
      uptimeMs: 0,
      dropped: {},
      sources: {},
      sinks: { custom: sinkSnapshot(0, { "weird\nkey": 1, 'back\\slash"quote': 2 }) },
    };
    const lines = toPrometheus(snap).trim().split("\n");
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+$/;
    expect(lines.filter((l) => !l.startsWith("# HELP ") && !l.startsWith("# TYPE ") && !sample.test(l))).toEqual([]);
    expect(lines).toContain("# HELP child_log_agg_sink_transport_weird_key_total Sink transport counter weird\\nkey");
    expect(lines).toContain('# HELP child_log_agg_sink_transport_back_slash_quote_total Sink transport counter back\\\\slash"quote');
  });

  it("a custom sink's keys named in `gauges` are exported as gauges, the others as counters", async () => {
    const sink = {
      name: "custom",
      gauges: ["open_connections", "bufferedBytes"],
      send: () => undefined,
      metrics: () => ({ open_connections: 3, bufferedBytes: 512, requests: 10 }),
    };
    const agg = new Aggregator().addSink(sink);
    await agg.start();
    const lines = agg.prometheus().trim().split("\n");
    const typeOf = (name: string) => lines.find((l) => l.startsWith(`# TYPE child_log_agg_${name} `))?.split(" ")[3];
    expect(typeOf("sink_transport_open_connections")).toBe("gauge");
    expect(typeOf("sink_transport_buffered_bytes")).toBe("gauge");
    expect(typeOf("sink_transport_requests_total")).toBe("counter");
    expect(lines).toContain('child_log_agg_sink_transport_open_connections{sink="custom"} 3');
    expect(lines).toContain('child_log_agg_sink_transport_requests_total{sink="custom"} 10');
    await agg.stop();
    expect(() => new Aggregator().addSink({ ...sink, gauges: "open_connections" as never })).toThrow(/`sink.gauges` to be an array of metric keys/);
  });
});
