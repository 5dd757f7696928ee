// Spawning and ending one collector process: its own process group, an explicit execArgv, the channel on fd 3,
// stdout drained and stderr's last lines kept (for exit reports), SIGTERM then SIGKILL to the whole group. The
// process groups a collector starts outside its own (a command's) are killed here when it could not do it itself:
// when it dies by a signal, and when the host exits.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Socket } from "node:net";
import { signalGroup } from "../util/process-group.js";
import { redact } from "../util/redact.js";

/**
 * The collector entry point and the Node flags it needs. Installed: dist/collector/main.cjs beside the bundle (one
 * CommonJS file: see tsup.config.ts).
 * Running from the TypeScript sources (this repo's tests and examples under tsx): the child runs from source
 * too, through tsx's loader resolved by absolute URL, so it never runs a stale build.
 */
export function collectorEntry(): { file: string; execArgv: string[] } {
  const here = import.meta.url;
  if (here.endsWith(".ts")) {
    const src = fileURLToPath(new URL("../collector/main.ts", here));
    try {
      const tsx = createRequire(here).resolve("tsx");
      if (existsSync(src)) return { file: src, execArgv: ["--import", pathToFileURL(tsx).href] };
    } catch {
      // no tsx: fall back to the build
    }
  }
  const candidates = [new URL("./collector/main.cjs", here), new URL("../../dist/collector/main.cjs", here)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return { file: p, execArgv: [] };
  }
  return { file: fileURLToPath(candidates[0]!), execArgv: [] };
}

/** How a process ended: its exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnedCollector {
  readonly child: ChildProcess;
  readonly channel: Socket;
  readonly pid: number | undefined;
  readonly stderrTail: string[];
  /** When it was spawned, and then when it was given its work (INIT): its uptime counts from there. */
  startedAt: number;
  forceKilled: boolean;
  /** Process groups the collector started outside its own (from its READY): a command's. */
  readonly groups: number[];
  /** Resolves once the process exited and its channel was read to the end (its last frames are in), or soon after. */
  readonly exited: Promise<ExitStatus>;
}

const STDERR_LINES = 20;
/**
 * After a collector exits, how long its channel may take to give up its last frames (a FATAL with the command's
 * exit code, the last STATS): the exit is reported once they are read, not before, and never later than this.
 */
const CHANNEL_END_WAIT_MS = 1_000;

/**
 * Node and V8 flags every collector starts with, before the source's own `execArgv` (a later flag wins, so users can
 * override). A collector is a streaming process whose garbage dies young: a 2 MB semi-space (instead of up to 16 MB)
 * costs it no throughput in `npm run bench` and keeps some 25 MB per collector out of the host's footprint. One V8
 * background thread instead of four (its GC helpers and compiler) saves about 1 MB more, also at no cost there.
 */
const COLLECTOR_FLAGS: readonly string[] = ["--max-semi-space-size=2", "--v8-pool-size=1"];

export function spawnCollector(options: { execArgv: string[]; env?: NodeJS.ProcessEnv; cwd?: string; kind?: string }): SpawnedCollector {
  const entry = collectorEntry();
  // The kind, when given, is a hint: the collector loads that kind's code before its INIT arrives.
  const args = options.kind === undefined ? [entry.file] : [entry.file, options.kind];
  // Throws when the process cannot be made at all (ENOMEM, E2BIG…): the caller treats that as a failed start.
  const child = spawn(process.execPath, [...COLLECTOR_FLAGS, ...entry.execArgv, ...options.execArgv, ...args], {
    // fd 3 is the channel (a duplex socket pair); stdout/stderr are piped so prints can't corrupt anything.
    stdio: ["ignore", "pipe", "pipe", "pipe"],
    detached: true,
    env: options.env ?? process.env,
    cwd: options.cwd,
    windowsHide: true,
  });
  if (child.stdio?.[3] == null) {
    // Out of file descriptors (EMFILE, ENFILE): Node returns a child without its pipes and reports the error in an
    // 'error' event on the next tick. Nothing was started; swallow that event (unhandled, it would end the host).
    child.once("error", () => {});
    throw new Error("cannot spawn the collector process: out of file descriptors (EMFILE/ENFILE)");
  }
  const stderrTail: string[] = [];
  let partial = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (s: string) => {
    const parts = (partial + s).split("\n");
    partial = parts.pop() ?? "";
    if (partial.length > 4096) partial = partial.slice(-4096);
    for (const line of parts) {
      stderrTail.push(redact(line.length > 1000 ? line.slice(0, 1000) + "…" : line));
      if (stderrTail.length > STDERR_LINES) stderrTail.shift();
    }
  });
  // User collector code may print; read and discard so the pipe never fills and blocks it.
  child.stdout?.resume();
  const channel = child.stdio[3] as Socket;
  const channelEnded = new Promise<void>((resolve) => {
    channel.once("end", resolve);
    channel.once("close", resolve);
  });
  const groups: number[] = [];
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("exit", (code, signal) => {
      // Killed by a signal, it had no chance to kill the groups it started: they would be orphans.
      if (signal !== null) for (const g of groups) killStartedGroup(g);
      let timer: NodeJS.Timeout | undefined;
      const report = (): void => {
        clearTimeout(timer);
        if (partial) stderrTail.push(redact(partial.slice(0, 1000)));
        partial = "";
        resolve({ code, signal });
      };
      timer = setTimeout(report, CHANNEL_END_WAIT_MS);
      timer.unref();
      void channelEnded.then(report);
    });
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  return {
    child,
    channel,
    pid: child.pid,
    stderrTail,
    startedAt: Date.now(),
    forceKilled: false,
    groups,
    exited,
  };
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined || signalGroup(pid, signal)) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** SIGKILL a process group a collector started; never a lone process (its leader's pid may have been reused). */
function killStartedGroup(group: number): void {
  signalGroup(group, "SIGKILL");
}

/** SIGTERM the group, SIGKILL it after `killAfterMs` (or at `deadline`, whichever is first). */
export async function terminate(c: SpawnedCollector, killAfterMs: number, deadline = Number.POSITIVE_INFINITY): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) {
    killGroup(c.pid, "SIGKILL"); // leftovers of its group (processes a script collector started)
    return;
  }
  killGroup(c.pid, "SIGTERM");
  const wait = Math.max(0, Math.min(killAfterMs, deadline - Date.now()));
  let timer: NodeJS.Timeout | undefined;
  const killed = await Promise.race([
    c.exited.then(() => false),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), wait);
    }),
  ]);
  clearTimeout(timer);
  if (killed) {
    c.forceKilled = true;
    killGroup(c.pid, "SIGKILL");
    await c.exited;
  } else {
    killGroup(c.pid, "SIGKILL");
  }
}

/** Kill every live collector group when the host exits, so no collector outlives a host that exits normally. */
const live = new Set<SpawnedCollector>();
let exitHook = false;
export function track(c: SpawnedCollector): void {
  live.add(c);
  void c.exited.then(() => live.delete(c));
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => {
      // The groups a collector started first: a collector SIGKILLed cannot kill them any more.
      for (const x of live) for (const g of x.groups) killStartedGroup(g);
      for (const x of live) killGroup(x.pid, "SIGKILL");
    });
  }
}
