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
  out.push("\ntargets (issue 7):");
  for (const t of o.targets) out.push(`  ${t.met === undefined ? "n/a " : t.met ? "MET " : "MISS"}  ${t.target.padEnd(58)} measured: ${t.measured}`);
  process.stdout.write(out.join("\n") + "\n");
}
