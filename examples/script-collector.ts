// ScriptSource: your own collector module, supervised in a child process like the built-in ones.
// This one polls a health endpoint (served here on 127.0.0.1) every 100 ms; the aggregator ships the results.
// Env: EXAMPLE_DURATION_MS (default 1500).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Aggregator, MemorySink, ScriptSource } from "../src/index.js";

const durationMs = Number(process.env.EXAMPLE_DURATION_MS ?? 1_500);

// The service being watched: healthy, except every fourth request.
let requests = 0;
const server = createServer((_req, res) => {
  requests++;
  if (requests % 4 === 0) res.writeHead(503).end("database unreachable");
  else res.writeHead(200).end("ok");
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;

const sink = new MemorySink({ name: "memory" });
const agg = new Aggregator({ batch: { maxWaitMs: 100 } })
  .addSource(
    new ScriptSource({
      name: "health",
      module: new URL("./collectors/health-check.ts", import.meta.url),
      options: { url, everyMs: 100, timeoutMs: 1_000 },
      // The collector is TypeScript, so its child needs a TS loader: tsx, by absolute URL (a bare "tsx" would be
      // resolved from the child's working directory). A JavaScript collector needs no execArgv.
      execArgv: ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href],
    }),
  )
  .addSink(sink);
agg.on("source:log", (e) => console.log(`[${e.source}] ${e.level}: ${e.message} ${JSON.stringify(e.fields ?? {})}`));

await agg.start();
await new Promise((resolve) => setTimeout(resolve, durationMs));
const report = await agg.stop({ timeoutMs: 5_000 });
server.close();

for (const r of sink.records.slice(0, 5)) {
  console.log(`${r["@timestamp"]} ${r.log?.level ?? "-"} ${r.message} (${(r.http as { response: { status_code: number } } | undefined)?.response.status_code ?? "-"})`);
}
const levels = sink.records.reduce<Record<string, number>>((m, r) => ((m[r.log?.level ?? "none"] = (m[r.log?.level ?? "none"] ?? 0) + 1), m), {});
console.log(`\n${sink.count} polls shipped, by level: ${JSON.stringify(levels)}`);
console.log(`report: source ${JSON.stringify(report.sources.health)}`);
console.log(`        sink ${JSON.stringify(report.sinks.memory)} timed out: ${report.timedOut}`);
process.exitCode = sink.count > 0 && report.sinks.memory!.pending === 0 ? 0 : 1;
