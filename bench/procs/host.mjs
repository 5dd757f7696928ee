// The measured app: a Node process that embeds child-log-agg (the freshly built library, as users get it) with one
// workload's sources and sink, and reports to the bench driver over IPC. Plain .mjs on purpose: no loader (and no
// esbuild service process) inflates the process tree being measured.
//
// driver ──fork(config)──▶ host ─ Aggregator ─ collectors (children) ─▶ sink ─▶ receiver (own process)
//        ◀── started / idle / stall / reached / done ──
import { linkSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { getHeapSpaceStatistics } from "node:v8";
import { epochNow } from "./lines.mjs";
import { ownCpu, residentByMapping, startHostImpact, threadCpu, timedStart } from "./host-impact.mjs";

const config = JSON.parse(process.argv[2]);
const lib = await import(pathToFileURL(config.lib).href);
const { Aggregator, CommandSource, ElasticsearchSink, FileSource, GelfSink, MemorySink, NetworkSource } = lib;

const send = (msg) => process.send?.(msg);
// BENCH_CHILD_FLAGS: extra node flags for the collectors (the host passes its environment on), to try their tuning.
const childFlags = (process.env.BENCH_CHILD_FLAGS ?? "").split(" ").filter((f) => f.length > 0);
const execArgv = [...childFlags, ...(config.profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", config.profileDir])];

const agg = new Aggregator({ queue: config.queue, hostName: "bench-host" });
const network = [];
config.sources.forEach((s, i) => {
  const common = { name: s.name ?? `src${i}`, parser: "json", execArgv };
  if (s.kind === "net") {
    const source = new NetworkSource({ ...common, listen: "tcp://127.0.0.1:0" });
    network.push(source);
    agg.addSource(source);
  } else if (s.kind === "file") {
    agg.addSource(new FileSource({ ...common, paths: s.paths, startAt: "beginning", globIntervalMs: 250 }));
  } else {
    // A command that ends is not run again: a `cat` rerun after its restart backoff would count its lines twice.
    agg.addSource(new CommandSource({ ...common, command: s.command, args: s.args, restartOnExit: "never" }));
  }
});

let sink;
if (config.sink.kind === "es") sink = new ElasticsearchSink({ name: "out", node: config.sink.url, index: "bench" });
else if (config.sink.kind === "gelf") sink = new GelfSink({ name: "out", url: config.sink.url });
// Counting only (`keep: 0`): the MemorySink holds none of what it gets.
else sink = new MemorySink({ name: "out", keep: 0 });
// W6: the sink's queue on disk.
agg.addSink(sink, config.sink.disk === undefined ? undefined : { queue: { disk: { dir: config.sink.disk } } });

let delivered = 0;
let reachedAt;
/** The first delivery (epoch ms) and its count: the driver leaves start-up out from there (MemorySink workloads). */
let firstAt = 0;
let firstDocs = 0;
const drops = {};
agg.on("drop", (e) => (drops[e.reason] = (drops[e.reason] ?? 0) + e.count));
agg.on("delivered", (e) => {
  delivered += e.count;
  if (firstAt === 0) {
    firstAt = epochNow();
    firstDocs = delivered;
    impact?.steady();
  }
  if (config.target !== undefined && reachedAt === undefined && delivered >= config.target) {
    reachedAt = epochNow();
    send({ event: "reached", at: reachedAt });
  }
});

// W4: queue depth over time, sampled in the host.
let queuePeak = { records: 0, bytes: 0 };
let queueTimer;
/** W4: the stall's first seconds, every 50 ms: how the queue fills and packs, and the host's memory meanwhile. */
const stallTrace = [];
let traceUntil = 0;
const sampleQueue = () => {
  const m = agg.metrics().sinks.out;
  if (m.queueRecords > queuePeak.records) queuePeak.records = m.queueRecords;
  if (m.queueBytes > queuePeak.bytes) queuePeak.bytes = m.queueBytes;
  if (epochNow() < traceUntil) {
    const u = process.memoryUsage();
    const mb = (b) => Math.round((b / 2 ** 20) * 10) / 10;
    stallTrace.push({ rss: mb(u.rss), ab: mb(u.arrayBuffers), heap: mb(u.heapTotal), queued: m.queueRecords, packed: m.queueCompressedRecords });
  }
};

/** W4: where the host's memory is (MB): the V8 heap by space (committed), ArrayBuffers, and RSS. */
const memory = () => {
  const mb = (b) => Math.round((b / 2 ** 20) * 10) / 10;
  const u = process.memoryUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((x) => [x.space_name, mb(x.physical_space_size)]));
  return { rss: mb(u.rss), heapCommitted: mb(u.heapTotal), heapUsed: mb(u.heapUsed), arrayBuffers: mb(u.arrayBuffers), spaces };
};

let impact;
/** How long start() held the event loop (host-impact.mjs timedStart). */
let startHold;
const stopped = new Promise((resolve) => process.on("message", (m) => m.cmd === "stop" && resolve()));

if (config.stall !== undefined) {
  // Nothing to read yet: the watched directory is empty, so the driver can measure the idle tree.
  mkdirSync(config.stall.dir, { recursive: true });
  if (config.stall.warm === undefined) sink.block();
  await agg.start();
  if (config.stall.warm !== undefined) {
    // A host that has shipped before its sink stalls: the warm-up file goes through a healthy sink first.
    linkSync(config.stall.warm.file, join(config.stall.dir, "warm.log"));
    while (delivered < config.stall.warm.lines) await new Promise((r) => setTimeout(r, 20));
    sink.block();
    await new Promise((r) => setTimeout(r, 1_000));
  }
  send({ event: "idle", memory: memory() });
  await new Promise((resolve) => process.on("message", (m) => m.cmd === "go" && resolve()));
  queueTimer = setInterval(sampleQueue, 50);
  const residentIdle = residentByMapping();
  const stallStart = epochNow();
  traceUntil = stallStart + 3_000;
  linkSync(config.stall.file, join(config.stall.dir, "data.log"));
  send({ event: "stall", phase: "start", at: stallStart });
  await new Promise((r) => setTimeout(r, config.stall.ms));
  const m = agg.metrics();
  send({ event: "stall", phase: "end", at: epochNow(), queueRecords: m.sinks.out.queueRecords, queueBytes: m.sinks.out.queueBytes, queueCompressedRecords: m.sinks.out.queueCompressedRecords, queueCompressedBytes: m.sinks.out.queueCompressedBytes, delivered, memory: memory(), trace: stallTrace, residentIdle, residentEnd: residentByMapping() });
  sink.unblock();
} else {
  startHold = await timedStart(agg);
  queueTimer = setInterval(sampleQueue, 50);
  impact = startHostImpact();
  // A delivery before start() resolved (a later source still starting): the steady window starts now.
  if (firstAt !== 0) impact.steady();
  // W5: the bound ports, for the driver's sender.
  send({ event: "started", at: epochNow(), ports: network.map((source) => source.addresses[0].port) });
}

await stopped;
const impactResult = impact?.stop();
clearInterval(queueTimer);
// Per thread before stop() ends any worker thread the sinks run.
const threadSec = threadCpu();
const before = agg.metrics();
const report = await agg.stop({ timeoutMs: 30_000 });
send({
  event: "done",
  delivered,
  firstAt,
  firstDocs,
  reachedAt,
  drops,
  impact: impactResult,
  startHold,
  ...ownCpu(),
  threadSec,
  queuePeak,
  queueConfig: config.queue,
  sinkTransport: before.sinks.out.transport,
  compressedTotal: before.sinks.out.queueCompressedTotal,
  sources: Object.fromEntries(Object.entries(before.sources).map(([k, v]) => [k, { emitted: v.emitted, linesRead: v.linesRead, parseErrors: v.parseErrors, restarts: v.restarts }])),
  totals: report.totals,
});
process.disconnect?.();
