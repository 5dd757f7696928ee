// A script collector runs the user's function on its only thread. A function stuck in a synchronous loop blocks the
// timer in main.ts that notices the host is gone (and the SIGTERM handler), so a host killed by SIGKILL would leave
// the collector spinning for good, re-parented to init. A worker thread watches instead:
//
//   every CHECK_MS: still the host's child? ──yes──▶ nothing
//                   └no (re-parented), STRIKES times running, main.ts had its chance ──▶ SIGKILL own process group
//
// Only script collectors start it (about 10 MB): the others run only this package's code, which never blocks that long.
import { Worker } from "node:worker_threads";

/** How often the watchdog checks the parent pid. */
const CHECK_MS = 1_000;
/** Checks in a row that find the collector re-parented before it is killed: main.ts's own check runs every second. */
const STRIKES = 3;

// Plain CommonJS for `eval: true`; no import of ours, so it runs the same from `src/` and `dist/`.
const WATCHDOG_SOURCE = `
const { workerData } = require("node:worker_threads");
let strikes = 0;
setInterval(() => {
  if (process.ppid === workerData.parentPid) {
    strikes = 0;
    return;
  }
  if (++strikes < workerData.strikes) return;
  // The collector is detached: its process group is its own pid, and holds whatever it started in it.
  try { process.kill(-workerData.pid, "SIGKILL"); } catch {}
  try { process.kill(workerData.pid, "SIGKILL"); } catch {}
}, workerData.checkMs);
`;

/**
 * Start the watchdog (once per process). It never keeps the collector alive, and if it cannot start or fails, the
 * collector runs on as before (its own check in main.ts still covers a collector whose event loop turns).
 */
export function startOrphanWatchdog(): void {
  if (started) return;
  started = true;
  let worker: Worker;
  try {
    worker = new Worker(WATCHDOG_SOURCE, {
      eval: true,
      workerData: { parentPid: process.ppid, pid: process.pid, checkMs: CHECK_MS, strikes: STRIKES },
      // Not the collector's flags (a TypeScript loader, say): the watchdog needs none of them.
      execArgv: [],
      // Its output is never read (it writes none); not piped into the collector's own stdout/stderr.
      stdout: true,
      stderr: true,
    });
  } catch {
    return;
  }
  worker.unref();
  worker.on("error", () => undefined);
}

let started = false;
