// Baseline (a), the seed's naive design: one child per source sends every line with `process.send`, and the parent
// calls `client.bulk` every 1000 lines (fire and forget: no bound on requests in flight, no backpressure).
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Client } from "@elastic/elasticsearch";
import { epochNow } from "./lines.mjs";
import { startHostImpact, ownCpu } from "./host-impact.mjs";

const config = JSON.parse(process.argv[2]);
const client = new Client({ node: config.url });
const ACTION = { index: { _index: "bench" } };
const execArgv = config.profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", config.profileDir];
let ops = [];
let lines = 0;
let inFlight = 0;
let failed = 0;

const flush = () => {
  if (ops.length === 0) return;
  const operations = ops;
  ops = [];
  inFlight++;
  client
    .bulk({ operations })
    .catch(() => failed++)
    .finally(() => inFlight--);
};

const children = config.sources.map((source) => {
  const child = fork(fileURLToPath(new URL("./naive-child.mjs", import.meta.url)), [JSON.stringify(source)], { execArgv });
  child.on("message", (line) => {
    if (typeof line !== "string") return flush();
    ops.push(ACTION, JSON.parse(line));
    if (++lines % 1000 === 0) flush();
  });
  return child;
});
// Tailed input trickles: ship the remainder every second.
const tick = setInterval(flush, 1000);
const impact = startHostImpact();
process.send?.({ event: "started", at: epochNow() });

await new Promise((resolve) => process.on("message", (m) => m.cmd === "stop" && resolve()));
const impactResult = impact.stop();
clearInterval(tick);
await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : (c.once("exit", r), c.kill("SIGTERM"))))));
await client.close();
process.send?.({ event: "done", delivered: lines, failedRequests: failed, impact: impactResult, ...ownCpu() });
process.disconnect?.();
