// A collector restart that cannot spawn (the host is out of file descriptors) must be a counted, retried failure,
// not an exception that ends the host. Runs a real host process under `ulimit -n`, with the built library.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "cla-spawn-failure-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const lib = pathToFileURL(fileURLToPath(new URL("../../../dist/index.js", import.meta.url))).href;

// The host: one CommandSource whose command prints a line and exits, so its collector ends and is restarted. When
// the first incarnation ends, the host opens /dev/null until EMFILE, so the restart's spawn fails; once that failure
// is reported, it closes them again and the next restart must succeed.
const HOST = `
import { closeSync, openSync } from "node:fs";
const { Aggregator, CommandSource, MemorySink } = await import(process.argv[2]);
const agg = new Aggregator();
const mem = new MemorySink({ name: "mem" });
agg.addSink(mem);
agg.addSource(new CommandSource({
  name: "cmd",
  command: process.execPath,
  args: ["-e", "console.log('hello')"],
  restart: { baseDelayMs: 50, maxDelayMs: 50, maxRestarts: 1000, windowMs: 60000 },
}));
const held = [];
const errors = [];
let readies = 0;
let exhausted = false;
const report = (extra) => { process.stdout.write(JSON.stringify({ errors, readies, hellos: mem.records.filter((r) => r.message === "hello").length, ...extra }) + "\\n"); };
const overall = setTimeout(() => { report({ timedOut: true }); process.exit(2); }, 30000);
agg.on("source:exit", () => {
  if (exhausted) return;
  exhausted = true;
  try { for (;;) held.push(openSync("/dev/null", "r")); } catch (e) { if (e.code !== "EMFILE") throw e; }
});
agg.on("source:error", (e) => {
  // The command's own exit is reported too; the spawn failure is the one to wait for.
  if (!/could not be started/.test(e.error.message)) return;
  errors.push({ code: e.error.code, message: e.error.message });
  while (held.length > 0) closeSync(held.pop());
});
agg.on("source:ready", async () => {
  readies++;
  if (errors.length === 0 || readies < 2) return;
  await mem.waitForCount(2, { timeout: 20000 });
  clearTimeout(overall);
  await agg.stop({ timeoutMs: 5000 });
  report({});
});
await agg.start();
`;

function runHost(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = join(dir, "host.mjs");
  writeFileSync(script, HOST);
  return new Promise((resolve) => {
    // A low descriptor limit, so that running out takes a few hundred opens, not the machine's limit.
    execFile("/bin/sh", ["-c", 'ulimit -n 256 && exec "$0" "$@"', process.execPath, script, lib], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr });
    });
  });
}

describe("a collector that cannot be spawned", () => {
  it("is reported as ERR_COLLECTOR_CRASHED and retried; the host lives on and the next restart succeeds", async () => {
    const r = await runHost();
    expect(r.stderr, "the host wrote to stderr (an uncaught exception?)").toBe("");
    expect(r.code, `host exit code; stdout: ${r.stdout}`).toBe(0);
    const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { errors: { code: string; message: string }[]; readies: number; hellos: number };
    expect(result.errors.length).toBeGreaterThanOrEqual(1);
    expect(result.errors[0]!.code).toBe("ERR_COLLECTOR_CRASHED");
    expect(result.errors[0]!.message).toMatch(/collector "cmd" could not be started: .*EMFILE/);
    expect(result.readies).toBeGreaterThanOrEqual(2);
    expect(result.hellos).toBeGreaterThanOrEqual(2);
  });
});
