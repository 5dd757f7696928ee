// The bench's repeated target rows (bench/lib/table.ts): each figure is the median of the runs, taken figure by
// figure, and the notes keep every run's figures in the order they ran.
import { describe, expect, it } from "vitest";
import { median, medianRow, type Row } from "../../../bench/lib/table.js";

function run(o: Partial<Row> & { docsPerSec: number }): Row {
  return { workload: "W1", shipper: "child-log-agg", docs: 1_000_000, wallSec: 1_000_000 / o.docsPerSec, cpuSec: 5, cpuPer1M: 5, peakRssMB: 200, processes: 2, partial: false, ...o };
}

describe("median", () => {
  it("takes the middle value of an odd count and the mean of the middle two of an even one, whatever the order", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([10, 40, 20, 30])).toBe(25);
    expect(median([7])).toBe(7);
  });
});

describe("medianRow", () => {
  it("gives each figure its own median across the runs, and lists every run's figures in run order", () => {
    const rows = [
      run({ docsPerSec: 254_000, cpuSec: 5.46, cpuPer1M: 5.46, peakRssMB: 200.3, eldP50: 0.6, eldP99: 15.9, eldP99AfterFirst: 9.9, hostCpuSec: 2.9, notes: "slow run" }),
      run({ docsPerSec: 268_000, cpuSec: 5.32, cpuPer1M: 5.32, peakRssMB: 199.1, eldP50: 0.5, eldP99: 11.1, eldP99AfterFirst: 8.0, hostCpuSec: 2.7, notes: "fast run" }),
      run({ docsPerSec: 266_000, cpuSec: 5.35, cpuPer1M: 5.35, peakRssMB: 207.4, eldP50: 0.4, eldP99: 10.9, eldP99AfterFirst: 9.5, hostCpuSec: 2.8, processes: 3, notes: "middle run" }),
    ];
    const m = medianRow(rows);
    expect(m).toMatchObject({ workload: "W1", shipper: "child-log-agg", docs: 1_000_000, docsPerSec: 266_000, cpuPer1M: 5.35, peakRssMB: 200.3 });
    expect(m).toMatchObject({ eldP50: 0.5, eldP99: 11.1, eldP99AfterFirst: 9.5, hostCpuSec: 2.8, processes: 3, partial: false });
    expect(m.wallSec).toBeCloseTo(1_000_000 / 266_000, 9);
    expect(m.notes).toBe(
      "median of 3 runs (docs/s 254k, 268k, 266k; CPU s/1M 5.46, 5.32, 5.35; peak RSS MB 200, 199, 207; ELD p99 ms 15.9, 11.1, 10.9); median run: middle run",
    );
  });

  it("is partial when any run was, leaves out figures no run has, and returns a single run as it is", () => {
    const rows = [run({ docsPerSec: 90_000 }), run({ docsPerSec: 100_000, partial: true, docs: 600_000 }), run({ docsPerSec: 95_000 })];
    const m = medianRow(rows);
    expect(m.partial).toBe(true);
    expect(m.docs).toBe(1_000_000);
    expect(m.eldP99).toBeUndefined();
    expect(m.hostCpuSec).toBeUndefined();
    expect(m.notes).toBe("median of 3 runs (docs/s 90k, 100k, 95k; CPU s/1M 5.00, 5.00, 5.00; peak RSS MB 200, 200, 200)");
    const one = run({ docsPerSec: 1 });
    expect(medianRow([one])).toBe(one);
  });
});
