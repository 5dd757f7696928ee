// What embedding the shipper costs the app around it: event-loop delay (perf_hooks) while the host also runs a small
// timer loop (a stand-in for the app's own work), whose lateness is recorded too.
import { createHistogram, monitorEventLoopDelay } from "node:perf_hooks";
import { readdirSync, readFileSync } from "node:fs";

const TIMER_MS = 10;
// The histogram records whole timer intervals: the delay is what exceeds the resolution.
const RESOLUTION_MS = 5;

export function startHostImpact() {
  const eld = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  const late = createHistogram();
  let expected = performance.now() + TIMER_MS;
  let sink = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    late.record(Math.max(1, Math.round((now - expected) * 1000))); // µs
    expected = now + TIMER_MS;
    sink += JSON.stringify({ route: "/health", ok: true, n: sink & 255 }).length; // a little app work
  }, TIMER_MS);
  eld.enable();
  /** The same delay from the first delivery on: the run without its warm-up (see steady()). */
  let steady;
  const cpu0 = process.cpuUsage();
  const ms = (ns) => Math.max(0, Math.round(ns / 1e4) / 100 - RESOLUTION_MS);
  const summary = (h) => ({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) });
  return {
    /** Start the second histogram (once): the host calls it at its first delivery. */
    steady() {
      if (steady !== undefined) return;
      steady = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      steady.enable();
    },
    stop() {
      eld.disable();
      steady?.disable();
      clearInterval(timer);
      const cpu = process.cpuUsage(cpu0);
      return {
        eventLoopDelayMs: summary(eld),
        eventLoopDelayAfterFirstDocMs: steady === undefined ? undefined : summary(steady),
        timerLatenessMs: { p50: late.percentile(50) / 1000, p99: late.percentile(99) / 1000, max: late.max / 1000 },
        hostCpuWhileShippingSec: (cpu.user + cpu.system) / 1e6,
      };
    },
  };
}

/**
 * How long `agg.start()` held the host's event loop at most: its call's own synchronous part (which no histogram
 * enabled in the same turn sees), and the longest delay of the turns after it until `start()` resolved.
 */
export async function timedStart(agg) {
  const turns = monitorEventLoopDelay({ resolution: 1 });
  turns.enable();
  const t0 = performance.now();
  const started = agg.start();
  const syncMs = performance.now() - t0;
  await started;
  turns.disable();
  const laterMs = Math.max(0, turns.max / 1e6 - 1);
  return { syncMs: Math.round(syncMs * 10) / 10, laterMaxMs: Math.round(laterMs * 10) / 10, totalMs: Math.round(performance.now() - t0) };
}

/** The host's own CPU (user+sys) since it started, and that of its reaped children (from /proc/self/stat). */
export function ownCpu() {
  const u = process.cpuUsage();
  return { hostSec: (u.user + u.system) / 1e6 };
}

/**
 * CPU seconds per thread (from /proc/self/task): `main` is the event loop's thread, `others` the busiest of the rest
 * (V8's GC helpers, libuv's pool, the GELF UDP sender's worker), largest first. Undefined without /proc.
 */
export function threadCpu() {
  try {
    const tick = 100; // USER_HZ on Linux
    const rows = readdirSync("/proc/self/task").map((tid) => {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return { tid: Number(tid), sec: (Number(f[11]) + Number(f[12])) / tick };
    });
    const main = rows.find((r) => r.tid === process.pid)?.sec;
    const others = rows.filter((r) => r.tid !== process.pid && r.sec > 0).map((r) => r.sec).sort((a, b) => b - a).slice(0, 4);
    return { main, others };
  } catch {
    return undefined;
  }
}

/**
 * W4: the host's resident memory by mapping (MB, from /proc/self/smaps): `file` (binaries and libraries), `[heap]`
 * (malloc's main arena: ArrayBuffers' stores, zlib, compiler zones), and other anonymous mappings by size (V8's heap
 * pages are the 256 KiB to 1 MiB ones). Undefined without /proc.
 */
export function residentByMapping() {
  try {
    const out = {};
    let cur;
    for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (m !== null) {
        const kib = (parseInt(m[2], 16) - parseInt(m[1], 16)) / 1024;
        const name = m[3];
        cur = name.startsWith("/") ? "file" : name !== "" ? name : kib >= 1024 ? "anon ≥ 1 MiB" : kib >= 256 ? "anon 256 KiB–1 MiB" : "anon < 256 KiB";
        continue;
      }
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss !== null && cur !== undefined) out[cur] = (out[cur] ?? 0) + Number(rss[1]) / 1024;
    }
    for (const k of Object.keys(out)) {
      out[k] = Math.round(out[k] * 10) / 10;
      if (out[k] === 0) delete out[k];
    }
    return out;
  } catch {
    return undefined;
  }
}
