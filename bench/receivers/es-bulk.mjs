// A loopback Elasticsearch bulk-API receiver for the benchmark, in its own process so it never shares a CPU
// budget or an event loop with a shipper. It speaks the real wire protocol (product header, GET /, _bulk with an
// item per action and the action's op name, _refresh) but only counts documents: it must not be the bottleneck, and
// `ceiling` measures how fast it is (a blaster process sends prebuilt bulk bodies at it).
//
// IPC from the driver: { cmd: "expect", n, latency } resets the counters; the receiver answers { event: "reached" }
// when n documents arrived. { cmd: "stats" } answers the counters; { cmd: "ceiling", ms } runs the self-test.
import { fork } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { epochNow } from "../procs/lines.mjs";

const PRODUCT = { "x-elastic-product": "Elasticsearch", "content-type": "application/json" };
const ITEM = { c: '{"create":{"_index":"bench","status":201}}', i: '{"index":{"_index":"bench","status":201}}' };
// What Elasticsearch answers under `filter_path=errors,items.*.status,items.*.error` (the sink's default): no
// `took`, and items reduced to their status.
const ITEM_FILTERED = { c: '{"create":{"status":201}}', i: '{"index":{"status":201}}' };
const INFO = JSON.stringify({
  name: "bench-receiver",
  cluster_name: "bench",
  cluster_uuid: "bench",
  version: { number: "9.1.0", build_flavor: "default", lucene_version: "10.1.0", minimum_wire_compatibility_version: "8.18.0", minimum_index_compatibility_version: "8.0.0" },
  tagline: "You Know, for Search",
});
const WTS = Buffer.from('wts":');

let docs = 0;
let requests = 0;
let bytes = 0;
let firstAt = 0;
/** Documents in the first bulk request (counted at firstAt): what arrived after it came in (lastAt - firstAt). */
let firstDocs = 0;
let lastAt = 0;
let target = Infinity;
let reachedSent = false;
let latency = false;
let latencies = [];
let malformed = 0;

/** The receiver's own CPU since the last reset: what it costs the 2 cores while a shipper runs. */
let cpuAtReset = process.cpuUsage();

function reset(n, wantLatency) {
  cpuAtReset = process.cpuUsage();
  docs = requests = bytes = malformed = firstDocs = 0;
  firstAt = lastAt = 0;
  target = n;
  reachedSent = false;
  latency = wantLatency;
  latencies = [];
}

/** Count action/document line pairs, check each action's op, and answer one item per action. */
function bulk(body, filtered) {
  const item = filtered ? ITEM_FILTERED : ITEM;
  const now = epochNow();
  const items = [];
  let pos = 0;
  let action = true;
  const n = body.length;
  while (pos < n) {
    let end = body.indexOf(10, pos);
    if (end === -1) end = n;
    if (end > pos) {
      if (action) {
        // {"create": / {"index": — byte 2 names the op.
        const op = body[pos + 2] === 0x63 ? "c" : body[pos + 2] === 0x69 ? "i" : undefined;
        if (op === undefined || body[pos] !== 0x7b) malformed++;
        items.push(item[op ?? "i"]);
      } else {
        docs++;
        if (latency) {
          const w = body.indexOf(WTS, pos);
          if (w !== -1 && w < end) latencies.push(now - Number.parseFloat(body.toString("latin1", w + 5, Math.min(end, w + 30))));
        }
      }
      action = !action;
    }
    pos = end + 1;
  }
  return filtered ? `{"errors":false,"items":[${items.join(",")}]}` : `{"took":1,"errors":false,"items":[${items.join(",")}]}`;
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const url = req.url ?? "/";
    if (req.method === "POST" && url.includes("_bulk")) {
      let body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      bytes += body.length;
      if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      requests++;
      if (firstAt === 0) firstAt = epochNow();
      // Only the filter the sink sends is modelled; any other filter_path gets the full answer.
      const filter = new URL(url, "http://x").searchParams.get("filter_path");
      const answer = bulk(body, filter === "errors,items.*.status,items.*.error");
      if (requests === 1) firstDocs = docs;
      lastAt = epochNow();
      res.writeHead(200, { ...PRODUCT, "content-length": Buffer.byteLength(answer) });
      res.end(answer);
      if (!reachedSent && docs >= target) {
        reachedSent = true;
        process.send?.({ event: "reached", at: lastAt, docs });
      }
      return;
    }
    if (url.includes("_refresh")) {
      res.writeHead(200, PRODUCT);
      return res.end('{"_shards":{"total":1,"successful":1,"failed":0}}');
    }
    if (url === "/" || url.startsWith("/?")) {
      res.writeHead(200, PRODUCT);
      return res.end(req.method === "HEAD" ? undefined : INFO);
    }
    res.writeHead(200, PRODUCT);
    res.end("{}");
  });
});
server.keepAliveTimeout = 60_000;

function percentiles(values) {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const at = (p) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] * 100) / 100;
  return { n: sorted.length, p50: at(50), p99: at(99), max: at(100) };
}

function stats() {
  const cpu = process.cpuUsage(cpuAtReset);
  return { docs, requests, bytes, firstAt, firstDocs, lastAt, malformed, latencyMs: percentiles(latencies), cpuSec: (cpu.user + cpu.system) / 1e6 };
}

async function ceiling(ms) {
  reset(Infinity, false);
  const blaster = fork(fileURLToPath(new URL("./blast-http.mjs", import.meta.url)), [String(port), String(ms)], { execArgv: [] });
  const sent = await new Promise((resolve) => blaster.once("message", resolve));
  await new Promise((resolve) => blaster.once("exit", resolve));
  const s = stats();
  const seconds = (s.lastAt - s.firstAt) / 1000;
  const docsPerSec = Math.round(s.docs / seconds);
  process.stdout.write(`[es-receiver] ceiling: ${docsPerSec.toLocaleString("en-US")} docs/s (${s.docs} docs in ${s.requests} bulk requests over ${seconds.toFixed(2)} s; blaster ${JSON.stringify(sent)})\n`);
  return { docsPerSec, docs: s.docs, seconds };
}

await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
process.on("message", async (m) => {
  if (m.cmd === "expect") {
    reset(m.n, m.latency === true);
    process.send({ event: "ok" });
  } else if (m.cmd === "stats") process.send({ event: "stats", stats: stats() });
  else if (m.cmd === "ceiling") process.send({ event: "ceiling", ceiling: await ceiling(m.ms) });
  else if (m.cmd === "exit") server.close(() => process.exit(0));
});
process.on("disconnect", () => process.exit(0));
process.send({ event: "listening", port });
