// A custom sink: POST each batch as NDJSON and classify the answer; the engine does the rest (backoff, Retry-After,
// dead letters, counters). Runs standalone (`npx tsx examples/custom-sink.ts`): it starts its own loopback receiver.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  Aggregator,
  MemorySink,
  Outcome,
  type Batch,
  type RecordOutcome,
  type SendContext,
  type SendResult,
  type Sink,
} from "../src/index.js";

/** Ships batches to an endpoint that answers `{ "errors": [{ "index": 3, "reason": "…" }] }` for the lines it refuses. */
class NdjsonHttpSink implements Sink {
  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async send(batch: Batch, { signal }: SendContext): Promise<SendResult> {
    // Reuse the canonical JSON as one body; honour the engine's signal and never wait forever on a silent server.
    // A thrown error (refused connection, timeout) means "retry the whole batch".
    const res = await fetch(this.url, {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: batch.json.join("\n") + "\n",
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
    });
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel();
      const seconds = Number(res.headers.get("retry-after") ?? Number.NaN);
      return Outcome.retry(`http_${res.status}`, Number.isFinite(seconds) ? seconds * 1000 : undefined);
    }
    // Any other 4xx: the same body would be refused again, so dead-letter it instead of retrying.
    if (!res.ok) {
      await res.body?.cancel();
      return Outcome.reject(`http_${res.status}`);
    }
    const { errors } = (await res.json()) as { errors: { index: number; reason: string }[] };
    if (errors.length === 0) return Outcome.delivered;
    const outcomes = new Array<RecordOutcome>(batch.length).fill(Outcome.delivered);
    for (const e of errors) outcomes[e.index] = Outcome.reject(e.reason);
    return Outcome.perRecord(outcomes);
  }
}

// The receiver: a hiccup (503, Retry-After: 1) on the first request, then it refuses lines longer than 1 KiB.
const accepted: string[] = [];
let requests = 0;
const server = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
  req.on("end", () => {
    if (++requests === 1) return void res.writeHead(503, { "retry-after": "1" }).end();
    const errors: { index: number; reason: string }[] = [];
    body.split("\n").filter(Boolean).forEach((line, index) => {
      if (line.length > 1024) errors.push({ index, reason: "line_too_long" });
      else accepted.push(line);
    });
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ errors }));
  });
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

const deadLetters = new MemorySink({ name: "dead-letters" });
const agg = new Aggregator({ batch: { maxWaitMs: 50 } })
  .addSink(new NdjsonHttpSink("http", `http://127.0.0.1:${port}/ingest`), { deadLetter: "dead-letters" })
  .addSink(deadLetters);
agg.on("retry", (e) => console.log(`retry: ${e.count} records of "${e.sink}" in ${e.delayMs} ms (${e.reason})`));
agg.on("deadLetter", (e) => console.log(`dead letter: ${e.count} record(s) of "${e.sink}" (${e.reason})`));

await agg.start();
await agg.write([
  ...Array.from({ length: 9 }, (_, i) => ({ message: `order ${i} shipped`, log: { level: "info" as const }, order: i })),
  { message: "x".repeat(2_000), log: { level: "warn" as const } },
]);
const report = await agg.stop({ timeoutMs: 10_000 });
server.close();

console.log(`receiver accepted ${accepted.length} lines; dead letters: ${deadLetters.count}`);
console.log("Delivery report:", JSON.stringify({ sinks: report.sinks, totals: report.totals }, null, 2));
// Every record is accounted for: delivered by the HTTP sink, or dead-lettered with its reason.
const http = report.sinks.http;
process.exitCode = http?.delivered === 9 && http.deadLettered === 1 && report.totals.pending === 0 ? 0 : 1;
