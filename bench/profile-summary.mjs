// Summarizes `npm run bench -- --profile` output: for each .cpuprofile (a host or a collector), total sampled time and
// the top functions by self time, so the next optimization starts from evidence.
// Usage: node bench/profile-summary.mjs [dir] [--top N]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
const topAt = args.indexOf("--top");
const top = topAt >= 0 ? Number(args[topAt + 1]) : 15;
const dir = args.find((a, i) => !a.startsWith("--") && (topAt < 0 || i !== topAt + 1)) ?? new URL("./results/profiles", import.meta.url).pathname;

for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).sort()) {
  const p = JSON.parse(readFileSync(join(dir, file), "utf8"));
  const self = new Map();
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  let total = 0;
  for (const [id, us] of dt) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const where = cf.url === "" ? "" : ` ${cf.url.replace(/^.*\/(bench\/results\/\.lib|node_modules)\//, "$1/").replace(/^file:\/\//, "")}:${cf.lineNumber + 1}`;
    const key = `${cf.functionName || "(anonymous)"}${where}`;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  }
  const idle = (self.get("(idle)") ?? 0) + (self.get("(program)") ?? 0) * 0;
  console.log(`\n${file} (${(statSync(join(dir, file)).size / 1024).toFixed(0)} KiB): ${(total / 1e6).toFixed(2)} s sampled, idle ${(idle / 1e6).toFixed(2)} s`);
  const rows = [...self].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, top);
  const busy = total - idle;
  for (const [k, us] of rows) console.log(`  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${(us / 1e3).toFixed(0).padStart(6)} ms  ${k}`);
}
