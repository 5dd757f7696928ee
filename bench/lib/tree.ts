// Measuring a whole process tree from outside it (Linux /proc): peak RSS and CPU so far by sampling every ~50 ms, and
// exact CPU from the kernel's accounting of reaped children. The driver runs one shipper at a time, so the growth of its own
// cutime+cstime across a run is precisely the user+sys time of that shipper's tree, children included, once the
// tree has exited (each parent reaps its children, and the kernel folds their times into the parent's).
import { readFileSync } from "node:fs";

const PAGE = 4096;
const TICKS_PER_SEC = 100;

/** The driver's reaped-children CPU seconds (user+sys), from /proc/self/stat fields 16 and 17. */
export function reapedChildrenCpuSec(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): cutime is field 16, cstime field 17.
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SEC;
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The pid and all its live descendants (children spawned by each process's main thread, where Node spawns). */
export function treePids(root: number): number[] {
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const children = readOr(`/proc/${pid}/task/${pid}/children`);
    if (children === undefined) continue;
    out.push(pid);
    for (const c of children.trim().split(" ")) if (c !== "") stack.push(Number(c));
  }
  return out;
}

/** Resident bytes of these processes (each counts its own share of the Node binary). */
export function treeRssBytes(pids: readonly number[]): number {
  let rss = 0;
  for (const pid of pids) {
    const statm = readOr(`/proc/${pid}/statm`);
    if (statm !== undefined) rss += Number(statm.split(" ")[1]) * PAGE;
  }
  return rss;
}

/** Each process of the tree: its anonymous and file-backed resident MB (/proc/PID/status), named by role. */
export function treeMemory(root: number): { pid: number; role: string; anonMB: number; fileMB: number }[] {
  const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;
  return treePids(root).flatMap((pid) => {
    const status = readOr(`/proc/${pid}/status`);
    if (status === undefined) return [];
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    const cmd = (readOr(`/proc/${pid}/cmdline`) ?? "").split("\0").join(" ");
    const role = pid === root ? "host" : /collector/.test(cmd) ? "collector" : cmd.split(" ")[0]!.split("/").pop()!;
    return [{ pid, role, anonMB: mb(kb("RssAnon")), fileMB: mb(kb("RssFile") + kb("RssShmem")) }];
  });
}

/**
 * CPU seconds the tree has used so far: each live process's user+sys (all its threads) plus what its reaped
 * children used (a command that already ended). In 10 ms ticks, as the kernel keeps them.
 */
export function treeCpuSec(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readOr(`/proc/${pid}/stat`);
    if (stat === undefined) continue;
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // f[0] is field 3: utime, stime, cutime, cstime are fields 14 to 17.
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / TICKS_PER_SEC;
}

export interface RssSample {
  /** Epoch ms. */
  t: number;
  rss: number;
  /** The tree's CPU seconds so far (see treeCpuSec). */
  cpu: number;
}

/** Samples the tree's RSS on a timer until stopped; keeps the series for later windows (W4). */
export class TreeSampler {
  readonly samples: RssSample[] = [];
  peak = 0;
  maxPids = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly root: number,
    private readonly intervalMs = 50,
  ) {}

  start(): this {
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  sample(): number {
    const pids = treePids(this.root);
    if (pids.length === 0) return 0;
    const rss = treeRssBytes(pids);
    this.samples.push({ t: performance.timeOrigin + performance.now(), rss, cpu: treeCpuSec(pids) });
    if (rss > this.peak) this.peak = rss;
    if (pids.length > this.maxPids) this.maxPids = pids.length;
    return rss;
  }

  /** The tree's CPU seconds at epoch ms `t`, interpolated between the samples around it (undefined outside them). */
  cpuAt(t: number): number | undefined {
    const s = this.samples;
    for (let i = 1; i < s.length; i++) {
      const a = s[i - 1]!;
      const b = s[i]!;
      if (a.t <= t && t <= b.t) return b.t === a.t ? b.cpu : a.cpu + ((b.cpu - a.cpu) * (t - a.t)) / (b.t - a.t);
    }
    return undefined;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Peak and lowest RSS between two epoch-ms instants. */
  window(from: number, to: number): { peak: number; low: number } {
    let peak = 0;
    let low = Infinity;
    for (const s of this.samples) {
      if (s.t < from || s.t > to) continue;
      if (s.rss > peak) peak = s.rss;
      if (s.rss < low) low = s.rss;
    }
    return { peak, low: Number.isFinite(low) ? low : 0 };
  }
}
