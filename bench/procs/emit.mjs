// The latency runs' log writer: lines paced at `--rate R` for `--duration S` seconds, with a write timestamp in each,
// to stdout or appended to `--file`. (W2's commands print pre-generated files with `cat`.)
import { openSync, writeSync, closeSync } from "node:fs";
import { epochNow, makeLine, prng } from "./lines.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : args[i + 1];
};
const seed = Number(opt("seed", "1"));
const rand = prng(seed);

const rate = Number(opt("rate", "10000"));
const durationMs = Number(opt("duration", "2")) * 1000;
const file = opt("file");
const fd = file === undefined ? -1 : openSync(file, "a");
const start = epochNow();
const total = Math.round((rate * durationMs) / 1000);
let i = 0;
// Every 10 ms write what the schedule owes: the per-line timestamp is the real write time.
const tick = () => {
  const now = epochNow();
  const due = Math.min(total, Math.floor(((now - start) * rate) / 1000));
  if (due > i) {
    let chunk = "";
    const wts = epochNow();
    for (; i < due; i++) chunk += makeLine(i, rand, wts) + "\n";
    if (file === undefined) process.stdout.write(chunk);
    else writeSync(fd, chunk);
  }
  if (i >= total) {
    clearInterval(timer);
    if (file !== undefined) closeSync(fd);
  }
};
const timer = setInterval(tick, 10);
