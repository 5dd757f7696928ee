// Checks the package as users get it: `npm pack` (which builds through `prepack`), install the tarball into a
// scratch project, then `import` and `require` it, fork a collector from the installed copy, and type-check a consumer.
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

// Not copied into the packing checkout: build output (rebuilt by prepack), dependencies (linked), VCS data.
const NOT_COPIED = new Set(["node_modules", "dist", ".git", "coverage", ".log-agg"]);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// The inner npm must see the scratch project, not the lifecycle of the `npm test` that may be running this suite.
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_(lifecycle_|package_|config_local_prefix$|command$)/i.test(k)) env[k] = v;
  }
  return env;
}

function run(file: string, args: readonly string[], cwd: string, timeout = 90_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env: childEnv(), timeout, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== "number") return reject(Object.assign(error, { stdout, stderr }));
      resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
    });
  });
}

function ok(what: string, r: Run): Run {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

// The consumer flow, shared by the ESM and the CJS script: a CommandSource, a FileSource with checkpoints and a
// ScriptSource (real collector children forked from the installed package, one of each kind that reads) and 1000
// in-host writes into a MemorySink, then stop() and print one JSON line.
const FLOW = String.raw`
async function main(lib, testing, collector, resolved) {
  const { Aggregator, AggregatorError, MemorySink, CommandSource, FileSource, ScriptSource, StateError } = lib;
  const fs = require("node:fs");
  const path = require("node:path");
  const emitter = "for (let i = 0; i < 3; i++) console.log(JSON.stringify({ message: 'hi ' + i, n: i })); setInterval(() => {}, 1 << 30);";
  // Each script run tails its own file and keeps its own checkpoints.
  const logFile = path.join(process.cwd(), "app-" + process.pid + ".log");
  const checkpointDir = path.join(process.cwd(), "checkpoints-" + process.pid);
  fs.writeFileSync(logFile, [0, 1, 2].map((i) => JSON.stringify({ message: "file " + i })).join("\n") + "\n");
  const mem = new MemorySink({ name: "mem" });
  const agg = new Aggregator({ batch: { maxWaitMs: 20 }, checkpointDir })
    .addSource(new CommandSource({ name: "cmd", command: process.execPath, args: ["-e", emitter], parser: "json" }))
    .addSource(new FileSource({ name: "file", paths: [logFile], parser: "json", startAt: "beginning" }))
    .addSource(new ScriptSource({ name: "script", module: path.join(process.cwd(), "my-collector.mjs") }))
    .addSink(mem);
  let collectorArgv = null;
  agg.on("source:ready", (e) => {
    if (e.source === "script" && fs.existsSync("/proc/" + e.pid + "/cmdline")) collectorArgv = fs.readFileSync("/proc/" + e.pid + "/cmdline", "utf8").split("\0");
  });
  await agg.start();
  const records = Array.from({ length: 1000 }, (_, i) => ({ message: "record " + i, log: { level: "info" }, n: i }));
  await agg.write(records);
  await testing.waitFor(() => mem.records.filter((r) => r.service?.name === "cmd").length >= 3, {
    timeout: 20000,
    message: () => "3 records from the command, got " + JSON.stringify(mem.messages().filter((m) => m.startsWith("hi"))),
  });
  await testing.waitFor(() => mem.records.some((r) => r.service?.name === "script"), { timeout: 20000, message: "a record from the script collector" });
  await testing.waitFor(() => mem.records.filter((r) => r.service?.name === "file").length >= 3, { timeout: 20000, message: "3 records from the file" });
  const report = await agg.stop({ timeoutMs: 10000 });
  const checkpoints = fs.readdirSync(checkpointDir).map((f) => [f, (fs.statSync(path.join(checkpointDir, f)).mode & 0o777).toString(8)]);
  // The built classes keep their names (the bundler renames colliding ones), and each code has its class.
  const late = await agg.write({ message: "late" }).catch((e) => e);
  const lateWrite = { name: late.name, code: late.code, isStateError: late instanceof StateError, isAggregatorError: late instanceof AggregatorError };
  const probe = testing.createBatch([{ message: "probe" }]);
  console.log(JSON.stringify({
    resolved,
    collectorArgv,
    collectorExports: Object.keys(collector),
    batch: { length: probe.length, json: probe.json },
    // Every exported error class, as the bundle names it (a bundler may rename a class that refers to itself).
    errorNames: Object.entries(lib).filter(([, v]) => v === lib.AggregatorError || v.prototype instanceof lib.AggregatorError).map(([k, v]) => [k, v.name, String(new v("ERR_INVALID_STATE", "probe")).split(":")[0]]),
    written: mem.records.filter((r) => r.service?.name === undefined).map((r) => r.message),
    fromScript: mem.records.filter((r) => r.service?.name === "script").map((r) => r.message),
    fromCommand: mem.records.filter((r) => r.service?.name === "cmd").map((r) => r.message),
    fromFile: mem.records.filter((r) => r.service?.name === "file").map((r) => r.message),
    checkpoints,
    report,
    lateWrite,
  }));
}
`;

const ESM = `import * as lib from "child-log-agg";
import * as testing from "child-log-agg/testing";
import * as collector from "child-log-agg/collector";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
${FLOW}
await main(lib, testing, collector, import.meta.resolve("child-log-agg"));
`;

const CJS = `"use strict";
${FLOW}
main(require("child-log-agg"), require("child-log-agg/testing"), require("child-log-agg/collector"), require.resolve("child-log-agg"))
  .catch((error) => { console.error(error); process.exitCode = 1; });
`;

// A TypeScript consumer of the shipped declarations, as ESM (.mts) and as CJS (.cts, require(esm) under nodenext).
const CONSUMER = `import {
  Aggregator, ConsoleSink, ElasticsearchSink, FileSink, GelfSink, LogstashSink, MemorySink, Outcome, SinkError, StateError,
  type DeliveryReport, type DropEvent, type Sink,
} from "child-log-agg";
import { createBatch, waitFor, type WaitForOptions } from "child-log-agg/testing";
import "child-log-agg/collector";

export const agg: Aggregator = new Aggregator({ queue: { whenFull: "dropOldest" } }).addSink(new MemorySink({ name: "m" }));
agg.on("drop", (e: DropEvent) => void e.count);
export const stopped: Promise<DeliveryReport> = agg.stop();
// Every built-in sink is a Sink, under the strictest settings too (exactOptionalPropertyTypes).
export const builtIn: Sink[] = [
  new MemorySink({ name: "m2" }),
  new GelfSink({ name: "g", url: "udp://127.0.0.1:12201" }),
  new LogstashSink({ name: "l", url: "tcp://127.0.0.1:5000" }),
  new LogstashSink({ name: "lh", url: "http://127.0.0.1:8080" }),
  new ElasticsearchSink({ name: "es", node: "http://127.0.0.1:9200" }),
  new FileSink({ name: "f", path: "out.ndjson" }),
  new ConsoleSink({ name: "c" }),
];
for (const s of builtIn) agg.addSink(s);
export const sink: Sink = { name: "custom", send: (batch) => (batch.length > 0 ? Outcome.delivered : undefined) };
export const batchLength: number = createBatch([{ message: "x" }]).length;
export const waited: Promise<boolean> = waitFor(() => true, { timeout: 1 } satisfies WaitForOptions);
export const sinkCode = (e: unknown): SinkError["code"] | undefined => (e instanceof SinkError ? e.code : undefined);
// @ts-expect-error ERR_SINK_SEND is not a StateError's code
export const wrongClass = new StateError("ERR_SINK_SEND", "x");
// @ts-expect-error the declarations are real types, not \`any\`: metrics() is not a number
export const wrong: number = agg.metrics();
// @ts-expect-error "dropAll" is not a whenFull policy
export const badOptions = new Aggregator({ queue: { whenFull: "dropAll" } });
`;

describe("the packed tarball, installed into a scratch project", () => {
  let scratch = "";
  let app = "";
  let entries: string[] = [];

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "cla-pack-"));
    // Pack from a copy of the checkout: prepack's `tsup` cleans dist/, and other test files fork the repo's
    // dist/collector/main.cjs while this one runs. The copy builds exactly what the current sources build.
    const checkout = join(scratch, "checkout");
    await cp(root, checkout, {
      recursive: true,
      filter: (src) => !NOT_COPIED.has(relative(root, src).split(sep)[0]!) && !src.endsWith(".tgz"),
    });
    await symlink(join(root, "node_modules"), join(checkout, "node_modules"), "dir");
    ok("npm pack", await run("npm", ["pack", "--pack-destination", scratch], checkout));
    const tarballs = (await readdir(scratch)).filter((f) => f.endsWith(".tgz"));
    expect(tarballs).toHaveLength(1);
    const tarball = join(scratch, tarballs[0]!);
    entries = ok("tar -tzf", await run("tar", ["-tzf", tarball], scratch)).stdout
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => l.replace(/^package\//, ""));

    app = join(scratch, "app");
    await mkdir(app);
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "scratch-app", private: true, version: "0.0.0" }));
    ok("npm install", await run("npm", ["install", tarball, "--no-audit", "--no-fund", "--prefer-offline"], app));
    await writeFile(join(app, "esm.mjs"), ESM);
    // A user's collector module, importing the kit from the installed package inside the collector child.
    await writeFile(
      join(app, "my-collector.mjs"),
      'import { defineCollector } from "child-log-agg/collector";\n' +
        'export default defineCollector(async ({ emit, signal }) => {\n' +
        '  await emit({ message: "from script" });\n' +
        '  await new Promise((resolve) => signal.addEventListener("abort", resolve));\n' +
        "});\n",
    );
    await writeFile(join(app, "cjs.cjs"), CJS);
    await writeFile(join(app, "consumer.mts"), CONSUMER);
    await writeFile(join(app, "consumer.cts"), CONSUMER);
  }, 180_000);

  afterAll(async () => {
    if (scratch !== "") await rm(scratch, { recursive: true, force: true });
  });

  it("ships the entry points, the forked collector entry and type declarations, and no sources or tests", () => {
    for (const f of [
      "package.json",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/collector.js",
      "dist/collector.d.ts",
      "dist/testing.js",
      "dist/testing.d.ts",
      "dist/collector/main.cjs",
    ]) {
      expect(entries, f).toContain(f);
    }
    expect(entries.filter((f) => /^(src|test|examples|bench|\.ci)\//.test(f) || f.endsWith(".tgz"))).toEqual([]);
    expect(entries.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
  });

  it.each([
    ["import", "esm.mjs"],
    ["require", "cjs.cjs"],
  ])("%s gives a working Aggregator: 1000 writes and forked command, file and script collectors deliver to a MemorySink", async (_how, script) => {
    const r = ok(script, await run(process.execPath, [script], app, 60_000));
    // The library never prints, and require(esm) raises no warning on the supported Node versions.
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines, r.stdout).toHaveLength(1);
    const out = JSON.parse(lines[0]!) as {
      resolved: string;
      collectorArgv: string[] | null;
      collectorExports: string[];
      batch: { length: number; json: string[] };
      errorNames: Array<[string, string, string]>;
      written: string[];
      fromCommand: string[];
      fromFile: string[];
      checkpoints: Array<[string, string]>;
      fromScript: string[];
      lateWrite: { name: string; code: string; isStateError: boolean; isAggregatorError: boolean };
      report: {
        timedOut: boolean;
        sinks: Record<string, { received: number; delivered: number; pending: number; droppedTotal: number }>;
        sources: Record<string, { kind: string; emitted: number; admitted: number }>;
        totals: { received: number; delivered: number; dropped: number; pending: number };
      };
    };
    const installed = await realpath(join(app, "node_modules", "child-log-agg"));
    const resolved = out.resolved.startsWith("file:") ? fileURLToPath(out.resolved) : out.resolved;
    expect(await realpath(resolved)).toBe(join(installed, "dist", "index.js"));

    expect(out.written).toEqual(Array.from({ length: 1000 }, (_, i) => `record ${i}`));
    expect(out.fromCommand).toEqual(["hi 0", "hi 1", "hi 2"]);
    expect(out.fromScript).toEqual(["from script"]);
    // The file collector (one CommonJS file with every kind's runtime) tails and commits its checkpoint, private.
    expect(out.fromFile).toEqual(["file 0", "file 1", "file 2"]);
    expect(out.checkpoints).toEqual([["file.json", "600"]]);
    expect(out.report.timedOut).toBe(false);
    expect(out.report.sinks.mem).toMatchObject({ received: 1007, delivered: 1007, pending: 0, droppedTotal: 0 });
    expect(out.report.sources.host).toMatchObject({ kind: "write", emitted: 1000, admitted: 1000 });
    expect(out.report.sources.cmd).toMatchObject({ kind: "command", emitted: 3, admitted: 3 });
    expect(out.report.sources.file).toMatchObject({ kind: "file", emitted: 3, admitted: 3 });
    expect(out.report.totals).toMatchObject({ received: 1007, delivered: 1007, dropped: 0, pending: 0 });
    expect(out.lateWrite).toEqual({ name: "StateError", code: "ERR_AGGREGATOR_STOPPED", isStateError: true, isAggregatorError: true });
    // child-log-agg/testing works from the installed copy, and child-log-agg/collector loads.
    expect(out.errorNames.length).toBeGreaterThan(3);
    for (const [exported, name, printed] of out.errorNames) expect([name, printed], exported).toEqual([exported, exported]);
    expect(out.batch.length).toBe(1);
    expect(JSON.parse(out.batch.json[0]!)).toMatchObject({ message: "probe" });
    expect(Array.isArray(out.collectorExports)).toBe(true);
    // The script's collector child runs the installed dist/collector/main.cjs (not the repo's), under the same node,
    // and is told its kind after it (so it loads that kind's code before its INIT).
    if (process.platform === "linux") {
      expect(out.collectorArgv, "collector argv from /proc").not.toBeNull();
      const argv = out.collectorArgv!.filter((a) => a.length > 0);
      expect(argv[argv.length - 1]).toBe("script");
      expect(await realpath(argv[argv.length - 2]!)).toBe(join(installed, "dist", "collector", "main.cjs"));
    }
  });

  // Plain strict, and the stricter type checks `tsc --init` turns on (TypeScript 5.9), which a new project starts from.
  it.each([
    ["strict", []],
    ["exactOptionalPropertyTypes", ["--exactOptionalPropertyTypes", "--noUncheckedIndexedAccess"]],
  ])("a TypeScript consumer type-checks against the shipped declarations (ESM and CJS under nodenext, %s)", async (_name, flags) => {
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    const r = await run(
      process.execPath,
      [
        tsc,
        "--noEmit",
        ...flags,
        "--strict",
        "--skipLibCheck",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--target",
        "es2022",
        "--typeRoots",
        join(root, "node_modules", "@types"),
        "--types",
        "node",
        "consumer.mts",
        "consumer.cts",
      ],
      app,
    );
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
    // The check reads the installed declarations: the consumer names them, and they are there.
    const dts = await readFile(join(app, "node_modules", "child-log-agg", "dist", "index.d.ts"), "utf8");
    expect(dts).toContain("declare class Aggregator");
  });
});
