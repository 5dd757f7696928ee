// Quickstart (`npm start`): three supervised services → a console summary of problems + an NDJSON file.
// One service crashes now and then; watch it restart. Stops itself and prints the delivery report.
// Env: QUICKSTART_DURATION_MS (default 15000, at most 30000), QUICKSTART_DIR (default ./.log-agg).
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { Aggregator, CommandSource, ConsoleSink, FileSink, type DeliveryReport } from "../src/index.js";

const durationMs = Math.min(Number(process.env.QUICKSTART_DURATION_MS ?? 15_000), 30_000);
const dir = process.env.QUICKSTART_DIR ?? ".log-agg";
const service = fileURLToPath(new URL("./services/fake-service.mjs", import.meta.url));
const node = (name: string, format: string, ...args: string[]) =>
  new CommandSource({
    name,
    command: process.execPath,
    args: [service, format, ...args],
    parser: format === "plain" ? "plain" : (format as "json" | "logfmt"),
    restart: { baseDelayMs: 500, maxDelayMs: 2_000, maxRestarts: 20 },
  });

const agg = new Aggregator({ batch: { maxRecords: 1_000, maxWaitMs: 250 } })
  .addSource(node("api", "json", "400"))
  .addSource(node("payments", "logfmt", "150"))
  .addSource(node("worker", "plain", "100", "4000")) // crashes after 4 s, every time
  .addSink(new ConsoleSink({ name: "console", format: "pretty" }), {
    filter: (r) => r.log?.level === "error" || r.log?.level === "fatal",
  })
  .addSink(new FileSink({ name: "file", path: join(dir, "quickstart.ndjson") }));

agg.on("source:restart", (e) => status(`↻ ${e.source} restarted (#${e.restarts}, after ${e.delayMs} ms)`));
agg.on("drop", (e) => status(`✗ dropped ${e.count} (${e.sink ?? "-"}: ${e.reason})`));

const tty = process.stdout.isTTY === true;
let last = { in: 0, out: 0, at: Date.now() };
function status(event?: string): void {
  const m = agg.metrics();
  const inTotal = Object.values(m.sources).reduce((n, s) => n + s.emitted, 0);
  const outTotal = Object.values(m.sinks).reduce((n, s) => n + s.delivered + s.filtered, 0);
  const queued = Object.values(m.sinks).reduce((n, s) => n + s.queueRecords, 0);
  const restarts = Object.values(m.sources).reduce((n, s) => n + s.restarts, 0);
  const secs = Math.max(0.001, (Date.now() - last.at) / 1000);
  const line = `in ${Math.round((inTotal - last.in) / secs)}/s  out ${Math.round((outTotal - last.out) / secs)}/s  queued ${queued}  restarts ${restarts}`;
  if (event === undefined) last = { in: inTotal, out: outTotal, at: Date.now() };
  if (tty) process.stdout.write(`\r\x1b[2K${event ?? line}${event ? "\n" : ""}`);
  else console.log(event ?? line);
}

await agg.start();
console.log(`shipping for ${durationMs / 1000} s; errors below, everything in ${join(dir, "quickstart.ndjson")}`);
const ticker = setInterval(() => status(), tty ? 500 : 2_000);
await new Promise((r) => setTimeout(r, durationMs));
clearInterval(ticker);
if (tty) process.stdout.write("\n");
const report = await agg.stop({ timeoutMs: 10_000 });
printReport(report);

function printReport(r: DeliveryReport): void {
  console.log(`\nDelivery report (${r.durationMs} ms to stop, timed out: ${r.timedOut})`);
  console.table(
    Object.fromEntries(
      Object.entries(r.sources).map(([k, s]) => [k, { kind: s.kind, emitted: s.emitted, parseErrors: s.parseErrors, restarts: s.restarts }]),
    ),
  );
  console.table(
    Object.fromEntries(
      Object.entries(r.sinks).map(([k, s]) => [
        k,
        { received: s.received, delivered: s.delivered, filtered: s.filtered, deadLettered: s.deadLettered, dropped: s.droppedTotal, retried: s.retried, pending: s.pending },
      ]),
    ),
  );
  console.log(`totals: ${JSON.stringify(r.totals)}`);
}
