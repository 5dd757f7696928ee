// Whether a process still runs (tests that wait for a collector to exit after its host died), and which collector
// processes this one has.
import { existsSync, readFileSync, readdirSync } from "node:fs";

/** Alive and not a zombie (a zombie has exited already; only its parent has not reaped it yet). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return existsSync(`/proc/${pid}`);
  }
}

/** This process's children that are collectors (their command line names the collector entry point). */
export function collectorChildren(): number[] {
  const pids = new Set<number>();
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    let children = "";
    try {
      children = readFileSync(`/proc/${process.pid}/task/${task}/children`, "utf8");
    } catch {
      continue; // the thread ended
    }
    for (const pid of children.split(" ").filter(Boolean).map(Number)) {
      try {
        if (/collector[/\\]main\.[jt]s/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8"))) pids.add(pid);
      } catch {
        // exited meanwhile
      }
    }
  }
  return [...pids];
}

/** A process's start time in clock ticks since boot (/proc/<pid>/stat field 22): with its pid, it names one process. */
export function startTime(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[19]!;
}
