// Typed metrics snapshot, the DeliveryReport returned by stop(), and their Prometheus text exposition.
import type { DropReason } from "./events.js";

export type DropCounts = Partial<Record<DropReason, number>>;

export interface SinkCounters {
  /** Records routed to this sink (after its filter). */
  received: number;
  delivered: number;
  deadLettered: number;
  /** Drops by reason; their sum is `droppedTotal`. */
  dropped: DropCounts;
  droppedTotal: number;
  /** Record-attempts that failed and were scheduled again. */
  retried: number;
  /** Records the sink's filter left out (not part of `received`). */
  filtered: number;
  /** Records held now: waiting, in flight or awaiting retry. At the end of `stop()`: not delivered by the deadline. */
  pending: number;
}

export interface SinkMetricsSnapshot extends SinkCounters {
  queueRecords: number;
  queueBytes: number;
  /** Of `queueRecords`, those held deflated now (`queue.compress`), and the bytes they take so. */
  queueCompressedRecords: number;
  queueCompressedBytes: number;
  /** Records held deflated at some point (a running total): how often the sink fell that far behind. */
  queueCompressedTotal: number;
  inFlightBatches: number;
  /** Batches that may be in flight now: `concurrency`, or with `"adaptive"` the current limit. */
  concurrencyLimit: number;
  sendErrors: number;
  /** Records the sink's filter threw on (left out of this sink, and counted in `filtered` too). */
  filterErrors: number;
  state: "idle" | "open" | "backoff" | "closed" | "failed";
  /** Counters the sink itself reports (requests, bytes, statuses, latency buckets). */
  transport: Record<string, number>;
  /** With `queue.disk`: the disk queue. */
  disk?: DiskQueueMetrics;
}

export interface DiskQueueMetrics {
  /** Records this run wrote that were not read back yet (part of `pending`). */
  records: number;
  /** Bytes of segment files on disk (records left by an earlier run included). */
  bytes: number;
  segments: number;
  /** Records written to disk in this run (a running total). */
  written: number;
  /** Records an earlier run left on disk, read back in this one (a running total). */
  recovered: number;
  /** Writes that failed (their records stayed in memory). */
  writeErrors: number;
  /** Stretches of segment files that held no readable record (their records are dropped as `diskCorrupt`). */
  corruptRegions: number;
}

export interface SourceCounters {
  /** Records the collector produced and sent to the host. */
  emitted: number;
  /** Records accepted into the sink queues. */
  admitted: number;
  /**
   * Records settled by every sink (delivered, dead-lettered and delivered there, or dropped by policy), counted as a
   * gap-free prefix: the ack watermark up to which positions may be committed.
   */
  settled: number;
  /** Bytes the collector read from its input, when it knows. */
  bytesRead: number;
  /** Lines the collector read from its input. */
  linesRead: number;
  /** Lines the parser could not parse (they are still shipped as plain messages). */
  parseErrors: number;
  restarts: number;
  /** Records received by the host but not yet admitted (waiting for queue room). */
  waiting: number;
  /** Counters the collector reports (rotations, truncations, invalid UTF-8, truncated lines…). */
  collector: Record<string, number>;
}

export interface SourceMetricsSnapshot extends SourceCounters {
  kind: string;
  state: "idle" | "starting" | "running" | "restarting" | "stopping" | "stopped" | "failed";
  pid: number | undefined;
}

export interface MetricsSnapshot {
  /** The aggregator's state (see `Aggregator.state`). */
  state: "idle" | "starting" | "running" | "stopping" | "stopped";
  uptimeMs: number;
  sources: Record<string, SourceMetricsSnapshot>;
  sinks: Record<string, SinkMetricsSnapshot>;
  /** Drops that happened before routing (no sink), by reason. */
  dropped: DropCounts;
}

/** What `stop()` resolves to: what was and wasn't delivered. */
export interface DeliveryReport {
  startedAt: string | undefined;
  stoppedAt: string;
  durationMs: number;
  /** True when stop() ended with records undelivered: held by a sink at the deadline, or waiting in a source with no sink left. */
  timedOut: boolean;
  sources: Record<string, SourceCounters & { kind: string }>;
  sinks: Record<string, SinkCounters>;
  /** Drops before routing (no sink), by reason. */
  dropped: DropCounts;
  totals: { received: number; delivered: number; deadLettered: number; dropped: number; pending: number };
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** A metric name part from a counter key: `droppedKeys` → `dropped_keys`, `status_2xx` as is. */
function metricName(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_");
}

/**
 * Counter keys that are levels, not running totals: exported as gauges. Everything else a collector or a sink
 * reports is a running total (a Prometheus counter, named `…_total`).
 */
const GAUGE_KEYS = new Set(["filesOpen", "max_request_bytes", "open_unreachable", "in_flight", "held_records", "records_resend_pending"]);

/**
 * Collector counters that count records dropped in the collector, before the host saw them: each increase is also a
 * `drop` (reason `collector`) and counts in `report.dropped`. Input refused as malformed is not here (NetworkSource
 * sums it as `malformed`): its sender sent something else than records. Nor are counters that are not records lost
 * for sure: `partialLinesDiscarded` (a copytruncate copy may still deliver the line), `handlerErrors` (handler calls,
 * not lines), `udpKernelDrops` (the kernel's count per socket, read once a second).
 */
export const COLLECTOR_DROP_KEYS: Readonly<Record<string, string>> = {
  overflowRecords: "emit() calls not awaited while a credit window already waited",
  invalidRecords: "emit()ted values that are not records",
  oversizedRecords: "records over 16 MiB",
  unsent: "records still waiting for credit when the stop's grace ended",
  oversizedLines: "lines over maxMessageBytes",
  udpDroppedNoCredit: "UDP messages that came while the host had no credit",
  partialDiscarded: "unfinished messages of connections that ended without a clean end",
  gelfTooLarge: "GELF messages over the size limit",
  gelfChunksExpired: "chunked GELF messages still incomplete when their time ran out",
  gelfChunksEvicted: "chunked GELF messages dropped to bound reassembly",
};

/** A collector's or transport's key that is a level (what is open now), not a running total. */
export function isGaugeKey(key: string): boolean {
  return GAUGE_KEYS.has(key);
}

/** The built-in sinks' latency histogram keys (see SinkStats): `latency_ms_le_<bound>`, `latency_ms_le_inf`, `latency_ms_sum`. */
const LATENCY_BUCKET = /^latency_ms_le_(\d+|inf)$/;

/**
 * Prometheus text exposition (format 0.0.4) of a metrics snapshot. `sinkGauges`: per sink, the transport keys that
 * are levels (Sink.gauges) besides the built-in ones.
 */
export function toPrometheus(m: MetricsSnapshot, prefix = "child_log_agg", sinkGauges?: ReadonlyMap<string, ReadonlySet<string>>): string {
  const lines: string[] = [];
  const families = new Map<string, { type: string; help: string; samples: string[] }>();
  /** Series written so far: keys that name one series twice (`req-count`, `reqCount`) keep the first. */
  const series = new Set<string>();
  /** `sample`: the sample's name suffix within its family (`_bucket`, `_sum`, `_count` of a histogram). */
  const add = (
    name: string,
    type: "counter" | "gauge" | "histogram",
    help: string,
    labels: Record<string, string>,
    value: number,
    sample = "",
  ): void => {
    const full = `${prefix}_${name}`;
    let fam = families.get(full);
    if (fam === undefined) {
      fam = { type, help, samples: [] };
      families.set(full, fam);
    } else if (fam.type !== type) {
      // One family has one type: a gauge named `x_total` and another sink's counter `x` keep the first.
      return;
    }
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(",");
    const id = `${full}${sample}${l ? `{${l}}` : ""}`;
    if (series.has(id)) return;
    series.add(id);
    fam.samples.push(`${id} ${Number.isFinite(value) ? value : 0}`);
  };
  /** A collector's or a sink transport's own counter, typed by GAUGE_KEYS (or by the sink's `gauges`). */
  const addOwn = (family: string, key: string, help: string, labels: Record<string, string>, value: number, gauges?: ReadonlySet<string>): void => {
    if (isGaugeKey(key) || gauges?.has(key) === true) add(`${family}_${metricName(key)}`, "gauge", help, labels, value);
    else add(`${family}_${metricName(key)}_total`, "counter", help, labels, value);
  };
  add("uptime_seconds", "gauge", "Seconds since start()", {}, m.uptimeMs / 1000);
  for (const [source, s] of Object.entries(m.sources)) {
    const l = { source };
    add("source_emitted_total", "counter", "Records a collector sent to the host", l, s.emitted);
    add("source_admitted_total", "counter", "Records admitted to the sink queues", l, s.admitted);
    add("source_settled_total", "counter", "Records settled by every sink (ack watermark)", l, s.settled);
    add("source_lines_read_total", "counter", "Lines read by a collector", l, s.linesRead);
    add("source_bytes_read_total", "counter", "Bytes read by a collector", l, s.bytesRead);
    add("source_parse_errors_total", "counter", "Lines that failed to parse (shipped as plain text)", l, s.parseErrors);
    add("source_restarts_total", "counter", "Collector restarts", l, s.restarts);
    add("source_waiting_records", "gauge", "Records received but waiting for queue room", l, s.waiting);
    add("source_up", "gauge", "1 when the collector is running", l, s.state === "running" ? 1 : 0);
    for (const [k, v] of Object.entries(s.collector)) addOwn("collector", k, `Collector counter ${k}`, l, v);
  }
  for (const [sink, s] of Object.entries(m.sinks)) {
    const l = { sink };
    add("sink_received_total", "counter", "Records routed to a sink", l, s.received);
    // A counter never goes down: records a close() found lost (`lostAtClose`, taken off `delivered` in the snapshot)
    // stay in it, and show in the dropped counter as well.
    add("sink_delivered_total", "counter", "Records the sink reported delivered (those its close later found lost count in dropped_total{reason=\"lostAtClose\"} too)", l, s.delivered + (s.dropped.lostAtClose ?? 0));
    add("sink_dead_lettered_total", "counter", "Records the dead-letter sink has delivered (settled there; announced by the deadLetter event when sent)", l, s.deadLettered);
    add("sink_retried_total", "counter", "Record attempts scheduled again", l, s.retried);
    add("sink_filtered_total", "counter", "Records left out by the sink's filter", l, s.filtered);
    add("sink_send_errors_total", "counter", "Sends that failed as a whole", l, s.sendErrors);
    add("sink_filter_errors_total", "counter", "Records the sink's filter threw on (left out of the sink)", l, s.filterErrors);
    for (const [reason, n] of Object.entries(s.dropped)) {
      add("sink_dropped_total", "counter", "Records dropped, by reason", { sink, reason }, n ?? 0);
    }
    add("sink_queue_records", "gauge", "Records held by the sink (waiting, in flight, awaiting retry)", l, s.queueRecords);
    add("sink_queue_bytes", "gauge", "Bytes held by the sink", l, s.queueBytes);
    add("sink_queue_compressed_records", "gauge", "Records held deflated while the sink is behind", l, s.queueCompressedRecords);
    add("sink_queue_compressed_bytes", "gauge", "Memory those deflated records take", l, s.queueCompressedBytes);
    add("sink_queue_compressed_total", "counter", "Records held deflated at some point", l, s.queueCompressedTotal);
    add("sink_in_flight_batches", "gauge", "Batches being sent", l, s.inFlightBatches);
    add("sink_concurrency_limit", "gauge", "Batches that may be in flight now (concurrency, or its adaptive limit)", l, s.concurrencyLimit);
    const d = s.disk;
    if (d !== undefined) {
      add("sink_disk_records", "gauge", "Records this run wrote to the disk queue that were not read back yet", l, d.records);
      add("sink_disk_bytes", "gauge", "Bytes of disk-queue segment files", l, d.bytes);
      add("sink_disk_segments", "gauge", "Disk-queue segment files", l, d.segments);
      add("sink_disk_written_total", "counter", "Records written to the disk queue", l, d.written);
      add("sink_disk_recovered_total", "counter", "Records an earlier run left in the disk queue, read back", l, d.recovered);
      add("sink_disk_write_errors_total", "counter", "Disk-queue writes that failed (their records stayed in memory)", l, d.writeErrors);
      add("sink_disk_corrupt_regions_total", "counter", "Stretches of disk-queue files that held no readable record", l, d.corruptRegions);
    }
    const t = s.transport;
    // Only with its +Inf bucket is it a histogram (the count): a custom sink's partial set is exported as counters.
    const histogram = t.latency_ms_le_inf !== undefined;
    for (const [k, v] of Object.entries(t)) {
      const bucket = histogram ? LATENCY_BUCKET.exec(k) : null;
      if (bucket !== null) {
        const le = bucket[1] === "inf" ? "+Inf" : bucket[1]!;
        add("sink_transport_latency_ms", "histogram", "Request latency (ms)", { sink, le }, v, "_bucket");
        if (le === "+Inf") {
          add("sink_transport_latency_ms", "histogram", "Request latency (ms)", l, t.latency_ms_sum ?? 0, "_sum");
          add("sink_transport_latency_ms", "histogram", "Request latency (ms)", l, v, "_count");
        }
      } else if (k !== "latency_ms_sum" || !histogram) {
        addOwn("sink_transport", k, `Sink transport counter ${k}`, l, v, sinkGauges?.get(sink));
      }
    }
  }
  for (const [reason, n] of Object.entries(m.dropped)) {
    add("dropped_total", "counter", "Records dropped before routing, by reason", { reason }, n ?? 0);
  }
  for (const [name, fam] of families) {
    // HELP text escapes `\` and line feeds (a custom sink's metric key is in it), as the exposition format says.
    lines.push(`# HELP ${name} ${fam.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${fam.type}`, ...fam.samples);
  }
  return lines.join("\n") + "\n";
}
