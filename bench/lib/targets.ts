// Issue 7's targets, checked against this run's rows (quick runs use 100k lines, so absolute rates there are a
// smoke signal, not the verdict).
import type { Row } from "./table.js";

export interface TargetCheck {
  target: string;
  measured: string;
  /** undefined when the run did not measure it. */
  met: boolean | undefined;
}

const f = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

export function checkTargets(rows: Row[], details: Record<string, unknown>, o: { quick: boolean; size: number }): TargetCheck[] {
  const out: TargetCheck[] = [];
  const find = (w: string, s: string): Row | undefined => rows.find((r) => r.workload === w && r.shipper === s);
  const w1 = find("W1", "child-log-agg");
  const pino5 = find("W1", "pino-es --flush-bytes 5000000 (b)");
  const add = (target: string, measured: string | undefined, met: boolean | undefined): void => {
    out.push({ target, measured: measured ?? "not run", met: measured === undefined ? undefined : met });
  };
  add("W1 ≥ 300k docs/s (ambition 700k)", w1 && `${f(w1.docsPerSec)} docs/s`, w1 && w1.docs >= o.size && w1.docsPerSec >= 300_000);
  add("W1 ≥ 2× pino-es --flush-bytes 5000000", w1 && pino5 && `${f(w1.docsPerSec / pino5.docsPerSec, 2)}×`, w1 && pino5 && w1.docsPerSec >= 2 * pino5.docsPerSec);
  add("W1 peak RSS host+children ≤ 200 MB (ambition 100)", w1 && `${f(w1.peakRssMB, 1)} MB`, w1 && w1.peakRssMB <= 200);
  add("W1 CPU ≤ 5 s per 1M docs", w1 && `${f(w1.cpuPer1M, 2)} s per 1M (tree); host ${f(((w1.hostCpuSec ?? 0) * 1e6) / Math.max(1, w1.docs), 2)} s per 1M`, w1 && w1.cpuPer1M <= 5);
  const steadyText = w1?.eldP99AfterFirst === undefined ? "" : `; after the first delivery p99 ${f(w1.eldP99AfterFirst, 1)} ms`;
  add(
    "Host event-loop delay p99 ≤ 10 ms during W1",
    w1?.eldP99 === undefined ? undefined : `p99 ${f(w1.eldP99, 1)} ms (p50 ${f(w1.eldP50 ?? 0, 1)} ms)${steadyText}`,
    w1?.eldP99 !== undefined && w1.eldP99 <= 10,
  );
  const w2 = find("W2", "child-log-agg");
  add("W2 ≥ 400k records/s", w2 && `${f(w2.docsPerSec)} records/s`, w2 && !w2.partial && w2.docsPerSec >= 400_000);
  const w3 = find("W3", "child-log-agg");
  add("W3 ≥ 150k msgs/s with 0 receiver drops", w3 && `${f(w3.docsPerSec)} msgs/s, ${w3.drops} lost (kernel drops ${w3.kernelDrops})`, w3 && w3.docsPerSec >= 150_000 && w3.drops === 0);
  const w4 = details.w4 as
    | {
        growthOverBaselineMB: number;
        settledPeakMB: number;
        settledLowMB: number;
        riseWhileFullMB: number;
        queueBound: { effectiveBytes: number };
        deliveredAfter: number;
        expected: number;
      }
    | undefined;
  if (w4 === undefined) add("W4 RSS flat within 20 % of the queue bound; all arrive", undefined, undefined);
  else {
    const boundMB = w4.queueBound.effectiveBytes / 2 ** 20;
    // Flat: once full, no rise of more than a fifth of the bound (V8 giving memory back is a fall, not drift).
    const flat = w4.riseWhileFullMB <= 0.2 * boundMB;
    const bounded = w4.growthOverBaselineMB <= 1.2 * boundMB;
    const all = w4.deliveredAfter >= w4.expected;
    add(
      "W4 RSS flat within 20 % of the queue bound; all arrive",
      `growth over idle ${f(w4.growthOverBaselineMB)} MB vs queue bound ${f(boundMB, 1)} MB (×${f(w4.growthOverBaselineMB / Math.max(1, boundMB), 1)}); ` +
        `rise while full ${f(w4.riseWhileFullMB, 1)} MB (range ${f(w4.settledLowMB)}–${f(w4.settledPeakMB)} MB); delivered ${f(w4.deliveredAfter)}/${f(w4.expected)}`,
      flat && bounded && all,
    );
  }
  return out;
}
