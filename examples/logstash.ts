// Ship to Logstash: `tcp://` (json_lines over one persistent connection) or `http://` (one JSON array per batch).
// Logstash side: input { tcp { port => 5000 codec => json_lines } }  (with tls://, the tcp input wants a client cert).
// Run: LOGSTASH_URL=tcp://127.0.0.1:5000 npx tsx examples/logstash.ts
import { Aggregator, LogstashSink } from "../src/index.js";

const url = process.env.LOGSTASH_URL ?? "tcp://127.0.0.1:5000";

const agg = new Aggregator({ batch: { maxRecords: 1_000, maxWaitMs: 200 } }).addSink(
  new LogstashSink({ name: "logstash", url, reconnect: { initialDelayMs: 100, maxDelayMs: 5_000 } }),
  { queue: { maxRecords: 50_000, whenFull: "dropOldest" } }, // never stall the app for Logstash; drops are counted
);
agg.on("drop", (e) => console.warn(`dropped ${e.count} for ${e.sink} (${e.reason})`));

await agg.start();
await agg.write(
  Array.from({ length: 100 }, (_, i) => ({ message: `payment ${i} captured`, log: { level: "info" as const }, amount: i * 3 })),
  { source: "payments" },
);
const report = await agg.stop({ timeoutMs: 15_000 });
console.log(JSON.stringify(report.sinks.logstash));
process.exitCode = report.sinks.logstash?.delivered === 100 && report.totals.pending === 0 ? 0 : 1;
