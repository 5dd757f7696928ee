// A CommandSource's command runs in a process group of its own: what it starts (a wrapper's worker that inherits
// its stdout) can neither hide its exit nor hold stop() up, and none of it outlives the command's collector.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, CommandSource, MemorySink, type SourceExitEvent } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

/** Processes the commands reported; whatever a failing test leaves running is killed by pid. */
const started = new Set<number>();
afterEach(() => {
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone, as it should be
    }
  }
  started.clear();
});

/** Whether `pid` is a live process (a zombie is not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Pids the command printed as `<label> <pid>` lines. */
function pids(mem: MemorySink, label: string): number[] {
  const out: number[] = [];
  for (const m of mem.messages()) {
    const match = new RegExp(`^${label} (\\d+)$`).exec(m);
    if (match) {
      const pid = Number(match[1]);
      started.add(pid);
      out.push(pid);
    }
  }
  return out;
}

/**
 * A wrapper that starts a worker with inherited stdio (so the worker holds the command's stdout and stderr) and
 * prints its pid. `worker` is the worker's own code; `then` what the wrapper does next.
 */
function wrapper(worker: string, then: string): string[] {
  return [
    "-e",
    `const w = require("node:child_process").spawn(process.execPath, ["-e", ${JSON.stringify(worker)}], { stdio: "inherit" });
console.log("worker " + w.pid);
${then}`,
  ];
}

describe("CommandSource process group", () => {
  it("reports the exit of a command whose worker still holds its stdout, kills the worker, and restarts", async () => {
    const mem = new MemorySink({ name: "mem" });
    const exits: SourceExitEvent[] = [];
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new CommandSource({
          name: "wrapped",
          command: process.execPath,
          args: wrapper("setInterval(() => {}, 1e9)", `process.stderr.write("wrapper gives up\\n"); setTimeout(() => process.exit(3), 50);`),
          restart: { baseDelayMs: 10, maxDelayMs: 20, maxRestarts: 100 },
        }),
      )
      .addSink(mem);
    agg.on("source:exit", (e) => exits.push(e));
    await agg.start();
    await waitFor(() => exits.length >= 2, {
      timeout: 20_000,
      message: () => `two exits of the wrapper reported, saw ${exits.length} (restarts ${agg.metrics().sources.wrapped!.restarts})`,
    });
    const workers = pids(mem, "worker");
    expect(workers.length).toBeGreaterThanOrEqual(2);
    // Every incarnation's worker went with its group, the current one's included once it is stopped.
    await agg.stop({ timeoutMs: 10_000 });
    await waitFor(() => workers.every((pid) => !running(pid)), {
      timeout: 10_000,
      message: () => `the workers to be gone; still running: ${workers.filter(running).join(", ")}`,
    });
    expect(exits[0]).toMatchObject({ source: "wrapped", exitCode: 3, signal: null, expected: false, forceKilled: false });
    expect(exits[0]!.stderrTail).toContain("wrapper gives up");
  });

  it("stop() signals the command's whole group: a worker that ignores SIGTERM and holds stdout does not hold the stop up", async () => {
    const mem = new MemorySink({ name: "mem" });
    const exits: SourceExitEvent[] = [];
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new CommandSource({
          name: "stubborn",
          command: process.execPath,
          args: wrapper(
            `process.on("SIGTERM", () => console.log("worker ignores SIGTERM")); console.log("worker listening"); setInterval(() => {}, 1e9)`,
            `process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1e9);`,
          ),
          // The collector's own stop must not need the host's SIGKILL; without its group, it waited for the worker.
          killAfterMs: 60_000,
        }),
      )
      .addSink(mem);
    agg.on("source:exit", (e) => exits.push(e));
    await agg.start();
    await waitFor(() => pids(mem, "worker").length === 1 && mem.messages().includes("worker listening"), {
      timeout: 10_000,
      message: "the worker's pid, and the worker ready for SIGTERM",
    });
    const [worker] = pids(mem, "worker");
    // A bounded stop: had the collector waited for the worker's stdout, the deadline would pass and force-kill it.
    const report = await agg.stop({ timeoutMs: 15_000 });
    expect(report.timedOut).toBe(false);
    expect(exits).toEqual([expect.objectContaining({ source: "stubborn", expected: true, forceKilled: false, exitCode: 0 })]);
    // The worker got SIGTERM (so did its wrapper), ignored it, and went with the group after the wrapper's exit.
    expect(mem.messages()).toContain("worker ignores SIGTERM");
    await waitFor(() => !running(worker!), { timeout: 10_000, message: `worker ${worker} to be gone` });
  });

  it("a collector killed by SIGKILL takes its command's group with it: the host kills it", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new CommandSource({
          name: "victim",
          command: process.execPath,
          args: ["-e", `console.log("command " + process.pid); setInterval(() => {}, 1e9)`],
          restart: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
        }),
      )
      .addSink(mem);
    const exits: SourceExitEvent[] = [];
    agg.on("source:exit", (e) => exits.push(e));
    await agg.start();
    await waitFor(() => pids(mem, "command").length === 1, { timeout: 10_000, message: "the command's pid" });
    const [command] = pids(mem, "command");
    const collector = agg.metrics().sources.victim!.pid!;
    process.kill(collector, "SIGKILL");
    await waitFor(() => exits.length === 1, { timeout: 10_000, message: "the collector's exit" });
    expect(exits[0]).toMatchObject({ signal: "SIGKILL", expected: false });
    await waitFor(() => !running(command!), { timeout: 10_000, message: `command ${command} to be killed with its collector` });
    await agg.stop({ timeoutMs: 10_000 });
  });
});
