#!/usr/bin/env node
// A stand-in for a real service, for the quickstart: prints realistic mixed-level logs in one format.
// Usage: fake-service.mjs <json|logfmt|plain> <linesPerSecond> [crashAfterMs]
const [format = "json", rateArg = "200", crashArg] = process.argv.slice(2);
const rate = Number(rateArg);
const crashAfter = crashArg === undefined ? undefined : Number(crashArg);
const paths = ["/api/orders", "/api/users/42", "/healthz", "/api/cart", "/login"];
const pick = (a) => a[Math.floor(Math.random() * a.length)];
let n = 0;

function line() {
  n++;
  const r = Math.random();
  const level = r < 0.7 ? "info" : r < 0.85 ? "debug" : r < 0.96 ? "warn" : "error";
  const path = pick(paths);
  const ms = Math.round(Math.random() * 250);
  const status = level === "error" ? 500 : level === "warn" ? 429 : 200;
  if (format === "json") {
    return JSON.stringify({ time: Date.now(), level, msg: `${status} GET ${path}`, http: { status, path }, duration_ms: ms, req: n });
  }
  if (format === "logfmt") {
    return `ts=${new Date().toISOString()} level=${level} msg="charge ${status === 200 ? "captured" : "declined"}" amount=${(Math.random() * 100).toFixed(2)} req=${n}`;
  }
  return `${new Date().toISOString()} ${level.toUpperCase()} worker job=${n} took ${ms}ms`;
}

const tick = 50;
setInterval(() => {
  let out = "";
  for (let i = 0; i < Math.max(1, Math.round((rate * tick) / 1000)); i++) out += line() + "\n";
  process.stdout.write(out);
}, tick);

if (crashAfter !== undefined) {
  setTimeout(() => {
    process.stderr.write(`${new Date().toISOString()} FATAL worker out of memory, crashing\n`);
    process.exit(1);
  }, crashAfter);
}
process.on("SIGTERM", () => process.exit(0));
