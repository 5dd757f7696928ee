// Ship to Elasticsearch with the official client: daily indices, deterministic ids (replays make no duplicates),
// rejected documents kept in a dead-letter file with the reason Elasticsearch gave.
// Run: ES_URL=http://127.0.0.1:9200 npx tsx examples/elasticsearch.ts
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Aggregator, ElasticsearchSink, FileSink } from "../src/index.js";

const node = process.env.ES_URL ?? "http://127.0.0.1:9200";
const dir = process.env.EXAMPLE_DIR ?? tmpdir();

const agg = new Aggregator({ batch: { maxRecords: 500, maxWaitMs: 200 } })
  .addSink(
    new ElasticsearchSink({
      name: "es",
      node, // or nodes / cloud: { id } / auth: { apiKey } / tls: { ca }
      index: "logs-example-%{+yyyy.MM.dd}",
      id: "deterministic",
      requestTimeoutMs: 10_000,
    }),
    { deadLetter: "es-dead-letters" },
  )
  .addSink(new FileSink({ name: "es-dead-letters", path: join(dir, "es-dead-letters.ndjson"), fsync: "batch" }));
agg.on("sink:error", (e) => console.error(`${e.sink}: ${e.error.code} ${e.error.message}`));

await agg.start();
await agg.write(
  Array.from({ length: 100 }, (_, i) => ({
    "@timestamp": new Date(Date.UTC(2026, 10, 28, 12, 0, i)).toISOString(),
    message: `GET /api/orders/${i} 200`,
    log: { level: "info" as const },
    http: { response: { status_code: 200 } },
  })),
  { source: "example" },
);
const report = await agg.stop({ timeoutMs: 15_000 });
console.log(JSON.stringify(report.sinks.es));
process.exitCode = report.sinks.es?.delivered === 100 && report.totals.pending === 0 ? 0 : 1;
