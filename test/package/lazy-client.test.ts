// The built package loads @elastic/elasticsearch only when an ElasticsearchSink that needs a client opens: a host
// shipping to Logstash, Graylog or files does not pay its memory and start-up. A resolve hook in a child process
// refuses the module, so any earlier load fails loudly.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const dist = fileURLToPath(new URL("../../dist/index.js", import.meta.url));

const HOOK = `export async function resolve(specifier, context, next) {
  if (specifier === "@elastic/elasticsearch" || specifier.startsWith("@elastic/")) throw new Error("refused: " + specifier);
  return next(specifier, context);
}`;

const SCRIPT = `
import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(HOOK)}));
const lib = await import(${JSON.stringify(dist)});
const signal = new AbortController().signal;
// Other sinks work without the client module.
const mem = new lib.MemorySink({ name: "mem" });
const agg = new lib.Aggregator().addSink(mem);
await agg.start();
await agg.write({ message: "hi" });
const report = await agg.stop();
const es = new lib.ElasticsearchSink({ name: "es", node: "http://127.0.0.1:9", verifyOnOpen: false });
let openError;
try {
  await es.open({ signal });
} catch (error) {
  openError = String(error?.message ?? error);
}
await es.close();
console.log(JSON.stringify({ delivered: report.sinks.mem.delivered, openError }));
`;

describe("@elastic/elasticsearch is loaded on demand", () => {
  it("importing the package, other sinks and constructing an ElasticsearchSink do not load it; open() does", async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--input-type=module", "-e", SCRIPT], { timeout: 60_000 }, (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`child failed: ${error.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    const result = JSON.parse(out.trim().split("\n").at(-1)!) as { delivered: number; openError?: string };
    expect(result.delivered).toBe(1);
    expect(result.openError).toContain("refused: @elastic/elasticsearch");
  });
});
