// The one table `npm run bench` prints: a row per workload and shipper, ratios against the baselines taken within
// the same run, the receivers' own ceilings, and the issue's targets with the measured figures.
import type { TargetCheck } from "./targets.js";

export interface Row {
  workload: string;
  shipper: string;
  docs: number;
  wallSec: number;
  docsPerSec: number;
  /** user+sys of the whole process tree. */
  cpuSec: number;
  cpuPer1M: number;
  peakRssMB: number;
  processes: number;
  /** The run hit its time slot: figures are for what arrived by then. */
  partial: boolean;
  hostCpuSec?: number;
  eldP50?: number;
  eldP99?: number;
  /** Event-loop delay p99 from the host's first delivery on (host-impact.mjs), where measured. */
  eldP99AfterFirst?: number;
  latP50?: number;
  latP99?: number;
  drops?: number;
  kernelDrops?: number;
  notes?: string;
}

/** The notes column: the parts that apply, in order. */
export function joinNotes(...parts: (string | undefined)[]): string | undefined {
  return parts.filter((x) => x !== undefined).join("; ") || undefined;
}

/** The middle value of `xs` (not empty), or the mean of the middle two for an even count. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * One row for repeated runs of a shipper: each figure the median of the runs that have it (so one figure may come
 * from another run than the next), the process count the largest, partial if any run was. The notes list each run's
 * throughput, CPU, RSS and event-loop p99 in the order they ran, then the notes of the run with the median docs/s
 * (for an even count, the faster of the middle two).
 */
export function medianRow(runs: Row[]): Row {
  if (runs.length === 1) return runs[0]!;
  const med = (k: keyof Row): number | undefined => {
    const xs = runs.map((r) => r[k]).filter((x): x is number => typeof x === "number" && Number.isFinite(x));
    return xs.length === 0 ? undefined : median(xs);
  };
  const list = (k: keyof Row, f: (x: number) => string): string | undefined => {
    const xs = runs.map((r) => r[k]).filter((x): x is number => typeof x === "number");
    return xs.length === 0 ? undefined : xs.map(f).join(", ");
  };
  const byRate = [...runs].sort((a, b) => a.docsPerSec - b.docsPerSec)[runs.length >> 1]!;
  const perRun = [
    list("docsPerSec", (x) => `${Math.round(x / 1000)}k`),
    list("cpuPer1M", (x) => x.toFixed(2)),
    list("peakRssMB", (x) => x.toFixed(0)),
    list("eldP99", (x) => x.toFixed(1)),
  ];
  const labels = ["docs/s", "CPU s/1M", "peak RSS MB", "ELD p99 ms"];
  const runsNote = perRun.map((v, i) => (v === undefined ? undefined : `${labels[i]} ${v}`)).filter((x) => x !== undefined).join("; ");
  return {
    workload: byRate.workload,
    shipper: byRate.shipper,
    docs: med("docs")!,
    wallSec: med("wallSec")!,
    docsPerSec: med("docsPerSec")!,
    cpuSec: med("cpuSec")!,
    cpuPer1M: med("cpuPer1M")!,
    peakRssMB: med("peakRssMB")!,
    processes: Math.max(...runs.map((r) => r.processes)),
    partial: runs.some((r) => r.partial),
    hostCpuSec: med("hostCpuSec"),
    eldP50: med("eldP50"),
    eldP99: med("eldP99"),
    eldP99AfterFirst: med("eldP99AfterFirst"),
    notes: joinNotes(`median of ${runs.length} runs (${runsNote})`, byRate.notes === undefined ? undefined : `median run: ${byRate.notes}`),
  };
}

const num = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n) ? "–" : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
}

export function printTable(
  rows: Row[],
  o: { esCeiling: Record<string, number>; gelfCeiling: Record<string, number>; targets: TargetCheck[]; totalSec: number; quick: boolean },
): void {
  const header = ["workload", "shipper", "docs", "wall s", "docs/s", "CPU s", "CPU s/1M", "peak RSS MB", "procs", "host CPU s", "ELD p50/p99 ms", "lat p50/p99 ms", "notes"];
  const cells = [header];
  for (const r of rows) {
    const notes: string[] = [];
    if (r.partial) notes.push("PARTIAL (time slot ran out)");
    if (r.drops !== undefined) notes.push(`lost ${r.drops} (kernel drops ${r.kernelDrops ?? 0})`);
    if (r.notes !== undefined) notes.push(r.notes);
    cells.push([
      r.workload,
      r.shipper,
      num(r.docs),
      num(r.wallSec, 2),
      num(r.docsPerSec),
      num(r.cpuSec, 2),
      num(r.cpuPer1M, 2),
      num(r.peakRssMB),
      String(r.processes),
      num(r.hostCpuSec, 2),
      r.eldP50 === undefined ? "–" : `${num(r.eldP50, 1)} / ${num(r.eldP99, 1)}`,
      r.latP50 === undefined ? "–" : `${num(r.latP50, 0)} / ${num(r.latP99, 0)}`,
      notes.join("; "),
    ]);
  }
  const out: string[] = [];
  out.push(`\nchild-log-agg bench${o.quick ? " (--quick)" : ""}: ${o.totalSec.toFixed(1)} s total`);
  out.push(`receiver ceilings: elasticsearch ${num(o.esCeiling.docsPerSec)} docs/s; gelf udp ${num(o.gelfCeiling.messagesPerSec)} msgs/s (kernel drops ${o.gelfCeiling.kernelDrops ?? 0}, rcvbuf ${num(o.gelfCeiling.recvBufferBytes)} B)\n`);
  out.push(pad(cells));

  const ours = rows.find((r) => r.workload === "W1" && r.shipper === "child-log-agg");
  if (ours !== undefined) {
    out.push("\nW1 ratios (child-log-agg ÷ baseline, same run): docs/s ×, CPU s ×, peak RSS ×");
    for (const b of rows.filter((r) => r.workload === "W1" && r !== ours)) {
      out.push(`  vs ${b.shipper.padEnd(36)} ${num(ours.docsPerSec / b.docsPerSec, 2)}×  ${num(ours.cpuPer1M / b.cpuPer1M, 2)}×  ${num(ours.peakRssMB / b.peakRssMB, 2)}×${b.partial ? "  (baseline partial)" : ""}`);
    }
  }
  out.push(o.quick ? "\ntargets (issue 7; set for the full run: a quick run's 100k lines are mostly start-up, so its rates are a smoke signal):" : "\ntargets (issue 7):");
  for (const t of o.targets) out.push(`  ${t.met === undefined ? "n/a " : t.met ? "MET " : "MISS"}  ${t.target.padEnd(58)} measured: ${t.measured}`);
  process.stdout.write(out.join("\n") + "\n");
}
