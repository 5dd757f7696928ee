// Ship to Graylog over GELF: `udp://` (compressed, chunked), `tcp://`/`tls://` (NUL-framed) or `http://…/gelf`.
// Multi-line messages keep their first line as short_message and the whole text as full_message.
// Run: GELF_URL=udp://127.0.0.1:12201 npx tsx examples/gelf.ts
import { Aggregator, GelfSink } from "../src/index.js";

const url = process.env.GELF_URL ?? "udp://127.0.0.1:12201";

const agg = new Aggregator({ batch: { maxRecords: 500, maxWaitMs: 100 } }).addSink(
  new GelfSink({ name: "graylog", url, chunkSize: "wan" }),
);

await agg.start();
await agg.write(
  Array.from({ length: 100 }, (_, i) => ({
    message: i % 10 === 0 ? `job ${i} failed\n    at runJob (worker.js:42:7)\n    at process (worker.js:10:3)` : `job ${i} done`,
    log: { level: i % 10 === 0 ? ("error" as const) : ("info" as const) },
    job: { id: i, queue: "emails" },
  })),
  { source: "worker" },
);
const report = await agg.stop({ timeoutMs: 10_000 });
console.log(JSON.stringify(report.sinks.graylog));
// UDP has no acknowledgements: "delivered" means every datagram was handed to the network.
process.exitCode = report.sinks.graylog?.delivered === 100 && report.totals.pending === 0 ? 0 : 1;
