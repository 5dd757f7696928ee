// A central syslog tier: receive syslog over UDP and TCP (RFC 5424 or BSD; newline or octet-counted framing) and
// ship it to Elasticsearch, finding how many bulk requests the cluster takes at once. Syslog senders do not replay, so
// the queue is on disk: what was received survives a crash of this process and is sent by the next start.
// Run: ES_URL=http://127.0.0.1:9200 SYSLOG_PORT=5514 QUEUE_DIR=./syslog-queue npx tsx examples/syslog-server.ts
// then: logger --server 127.0.0.1 --port 5514 --udp --rfc5424 "hello" (Ctrl-C stops it and prints the report)
import { Aggregator, ElasticsearchSink, NetworkSource } from "../src/index.js";

const node = process.env.ES_URL ?? "http://127.0.0.1:9200";
const port = process.env.SYSLOG_PORT ?? "5514";
const queueDir = process.env.QUEUE_DIR ?? "./syslog-queue";

const syslog = new NetworkSource({
  name: "syslog",
  // 0.0.0.0 to accept other machines; 127.0.0.1 keeps this example local.
  listen: [`udp://127.0.0.1:${port}`, `tcp://127.0.0.1:${port}`],
  parser: "syslog",
});
const agg = new Aggregator({ batch: { maxRecords: 1_000, maxWaitMs: 200 } })
  .addSource(syslog)
  .addSink(new ElasticsearchSink({ name: "es", node, dataStream: "logs-syslog-default" }), {
    concurrency: "adaptive",
    queue: { disk: { dir: queueDir, maxBytes: 4 * 1024 ** 3 } },
  });
agg.on("sink:error", (e) => console.error(`${e.sink}: ${e.error.code} ${e.error.message}`));

await agg.start();
console.log(`listening: ${syslog.addresses.map((a) => a.url).join(" ")}`);

await new Promise<void>((resolve) => {
  process.once("SIGINT", resolve);
  process.once("SIGTERM", resolve);
});
const report = await agg.stop({ timeoutMs: 10_000 });
console.log(`report: ${JSON.stringify({ received: report.sources.syslog?.emitted, es: report.sinks.es })}`);
process.exitCode = report.totals.pending === 0 && report.totals.dropped === 0 ? 0 : 1;
