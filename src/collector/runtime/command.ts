// The command collector: runs the user's command (no shell unless asked), reads stdout and stderr at the same
// time, and stops reading both when the host has no credit, so the command blocks on its own pipe.
import { type ChildProcess, spawn } from "node:child_process";
import type { ChildChannel } from "./channel.js";
import type { CollectorRun } from "./run.js";
import { LinePipeline, type LineCounters } from "./line-pipeline.js";
import type { CommandSpec } from "../../sources/specs.js";

export function runCommand(spec: CommandSpec, channel: ChildChannel): CollectorRun {
  const child: ChildProcess = spawn(spec.command, spec.args ?? [], {
    shell: spec.shell ?? false,
    cwd: spec.cwd,
    env: spec.env === undefined ? process.env : { ...(spec.inheritEnv === false ? {} : process.env), ...spec.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const outOfCredit = (): void => pause();
  const base = { source: spec.name, host: spec.hostName, fields: spec.fields };
  const stdout = new LinePipeline(
    { parser: spec.parser ?? "plain", multiline: spec.multiline, maxLineBytes: spec.maxLineBytes, context: { ...base, stream: "stdout" } },
    channel,
    outOfCredit,
  );
  const stderr = new LinePipeline(
    {
      parser: spec.parser ?? "plain",
      multiline: spec.multiline,
      maxLineBytes: spec.maxLineBytes,
      context: { ...base, stream: "stderr", defaultLevel: spec.stderrLevel ?? "warn" },
    },
    channel,
    outOfCredit,
  );
  let paused = false;
  const pause = (): void => {
    if (paused) return;
    paused = true;
    child.stdout?.pause();
    child.stderr?.pause();
  };
  const resume = (): void => {
    if (!paused) return;
    paused = false;
    child.stdout?.resume();
    child.stderr?.resume();
  };
  child.stdout!.on("data", (c: Buffer) => stdout.push(c));
  child.stderr!.on("data", (c: Buffer) => stderr.push(c));
  const ended = (s: NodeJS.ReadableStream): Promise<void> =>
    new Promise((resolve) => {
      s.once("end", resolve);
      s.once("close", resolve);
      s.once("error", () => resolve());
    });
  const outputsDone = Promise.all([ended(child.stdout!), ended(child.stderr!)]).then(() => {
    stdout.end();
    stderr.end();
  });
  let spawnError: string | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("error", (e: NodeJS.ErrnoException) => {
      spawnError = `${e.code ?? "error"}: ${e.message}`;
      resolve({ code: null, signal: null });
    });
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const done = Promise.all([exited, outputsDone]).then(([exit]) => ({ ...exit, error: spawnError }));
  return {
    pause,
    resume,
    done,
    async stop(killAfterMs: number) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        timer.unref();
        // Keep reading while it shuts down: credit permitting, its last words are shipped too.
        await done;
        clearTimeout(timer);
      } else {
        await done;
      }
    },
    counters() {
      const a: LineCounters = stdout.counters;
      const b: LineCounters = stderr.counters;
      return {
        linesRead: a.linesRead + b.linesRead,
        bytesRead: a.bytesRead + b.bytesRead,
        parseErrors: a.parseErrors + b.parseErrors,
        droppedKeys: a.droppedKeys + b.droppedKeys,
        stderrLines: b.linesRead,
        blankLines: a.blankLines + b.blankLines,
        invalidUtf8: a.invalidUtf8 + b.invalidUtf8,
        truncatedLines: a.truncatedLines + b.truncatedLines,
      };
    },
  };
}
