// Whether a process still runs, for tests that wait for a collector to exit after its host died.
import { existsSync, readFileSync } from "node:fs";

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
