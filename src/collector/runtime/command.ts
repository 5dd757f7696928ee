// The command collector: runs the user's command (no shell unless asked) in a process group of its own, reads
// stdout and stderr at the same time, and stops reading both when the host has no credit, so the command blocks
// on its own pipe. The credit runs out after a line, not after a read: the rest of the read waits in its
// LinePipeline and goes first when credit comes back.
//
//   spawn (detached: a process group of its own) ──stdout, stderr──▶ LinePipeline ×2 ──▶ channel
//   stop ─▶ SIGTERM the group ──killAfterMs──▶ SIGKILL the group
//   the command exits ─▶ its pipes end, or OUTPUT_GRACE_MS pass (a process it started holds them: destroy them)
//                     ─▶ SIGKILL what is left of the group
//                     ─▶ what the pipelines hold goes out as credit comes (at once when stopping)
//                     ─▶ done {code, signal, stderrTail}
//
// The group is what makes this work: a wrapper's workers get the stop signal too, and none of them outlives the
// command's incarnation. It is not the collector's group, so main kills it on every way out (processGroups), and the
// host kills it when the collector dies by a signal.
import { type ChildProcess, spawn } from "node:child_process";
import type { ChildChannel } from "./channel.js";
import type { CollectorRun } from "./run.js";
import { LinePipeline, type LineCounters } from "./line-pipeline.js";
import type { CommandSpec } from "../../sources/specs.js";
import { signalGroup } from "../../util/process-group.js";

/**
 * Once the command has exited, how long its stdout and stderr may still deliver what they hold. A process the
 * command started with inherited stdio holds them open for as long as it lives: waiting for their end would never
 * report the exit, and would hold stop() up to SIGKILL. (Node resumes a child's paused stdio when it exits, so what
 * is in the pipes is read within the grace even when the host has no credit; it then waits for credit in memory.)
 */
export const OUTPUT_GRACE_MS = 1_000;
/** The command's last stderr lines kept for the exit report, as the host keeps a collector's own. */
const STDERR_TAIL_LINES = 20;
const STDERR_TAIL_BYTES = 16 * 1024;
const STDERR_LINE_CHARS = 1000;


/** The last bytes the command wrote to stderr, kept as the chunks that arrived (no copies), made lines on demand. */
class StderrTail {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.length >= STDERR_TAIL_BYTES) this.bytes -= this.chunks.shift()!.length;
  }

  lines(): string[] {
    let bytes = Buffer.concat(this.chunks);
    const cut = bytes.length > STDERR_TAIL_BYTES;
    if (cut) bytes = bytes.subarray(bytes.length - STDERR_TAIL_BYTES);
    const lines = bytes.toString("utf8").split("\n");
    if (cut) lines.shift(); // the end of a line whose start was not kept
    if (lines.at(-1) === "") lines.pop();
    return lines.slice(-STDERR_TAIL_LINES).map((l) => {
      const line = l.endsWith("\r") ? l.slice(0, -1) : l;
      return line.length > STDERR_LINE_CHARS ? `${line.slice(0, STDERR_LINE_CHARS)}…` : line;
    });
  }
}

export function runCommand(spec: CommandSpec, channel: ChildChannel): CollectorRun {
  const child: ChildProcess = spawn(spec.command, spec.args ?? [], {
    shell: spec.shell ?? false,
    cwd: spec.cwd,
    // inheritEnv: false starts from nothing, `env` or not (the host's secrets stay out of the command).
    env: spec.inheritEnv === false ? { ...spec.env } : spec.env === undefined ? process.env : { ...process.env, ...spec.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  /** The command's process group (its pid) until it has been killed after the command ended. */
  let group = child.pid;
  const killGroup = (): void => {
    signalGroup(group, "SIGKILL");
    group = undefined;
  };
  const base = { source: spec.name, host: spec.hostName, fields: spec.fields };
  const stdout = new LinePipeline(
    { parser: spec.parser ?? "plain", multiline: spec.multiline, maxLineBytes: spec.maxLineBytes, context: { ...base, stream: "stdout" } },
    channel,
  );
  const stderr = new LinePipeline(
    {
      parser: spec.parser ?? "plain",
      multiline: spec.multiline,
      maxLineBytes: spec.maxLineBytes,
      context: { ...base, stream: "stderr", defaultLevel: spec.stderrLevel ?? "warn" },
    },
    channel,
  );
  const tail = new StderrTail();

  let paused = false;
  let stopping = false;
  /** Set while the exited command's last output waits in the pipelines for credit. */
  let released: (() => void) | undefined;
  const pause = (): void => {
    if (paused) return;
    paused = true;
    stdout.pause();
    stderr.pause();
    // Once the command has exited, its pipes are read to their end whatever the credit (Node resumes them, and the
    // grace destroys them): paused again, what they still held would be lost. It waits in the pipelines instead.
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdout?.pause();
    child.stderr?.pause();
  };
  const resume = (): void => {
    // What was read before the credit ran out goes first; the pipes are read again once none of it is left in
    // either stream. Till then both stay paused, multiline idle timers included: a stream with nothing held still
    // has its next lines waiting in its pipe.
    if (!paused || !stdout.resume() || !stderr.resume()) return;
    paused = false;
    stdout.readingAgain();
    stderr.readingAgain();
    child.stdout?.resume();
    child.stderr?.resume();
    released?.();
  };
  child.stdout!.on("data", (c: Buffer) => {
    if (!stdout.push(c)) pause();
  });
  child.stderr!.on("data", (c: Buffer) => {
    tail.push(c);
    if (!stderr.push(c)) pause();
  });
  const ended = (s: NodeJS.ReadableStream): Promise<void> =>
    new Promise((resolve) => {
      s.once("end", resolve);
      s.once("close", resolve);
      s.once("error", () => resolve());
    });
  const outputsDone = Promise.all([ended(child.stdout!), ended(child.stderr!)]);
  let spawnError: string | undefined;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("error", (e: NodeJS.ErrnoException) => {
      spawnError = `${e.code ?? "error"}: ${e.message}`;
      resolve({ code: null, signal: null });
    });
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const done = exit.then(async (e) => {
    // Ended by itself, not by our stop (its last output may still wait for credit until a stop comes).
    const beforeStop = !stopping;
    const grace = setTimeout(() => {
      child.stdout!.destroy();
      child.stderr!.destroy();
    }, OUTPUT_GRACE_MS);
    await outputsDone;
    clearTimeout(grace);
    // Whatever the command started and left behind goes with it: restarts must not pile up its workers.
    killGroup();
    // Its last output waits for credit like the rest (a restarted command could not ship either); a stop sends it
    // at once, past the credit: the command is gone, and this is all it will ever say.
    if (!stopping && (stdout.holding || stderr.holding)) await new Promise<void>((resolve) => (released = resolve));
    released = undefined;
    stdout.end();
    stderr.end();
    return { ...e, error: spawnError, stderrTail: tail.lines(), beforeStop };
  });
  return {
    pause,
    resume,
    done,
    processGroups: () => (group === undefined ? [] : [group]),
    async stop(killAfterMs: number) {
      stopping = true;
      released?.();
      if (child.exitCode === null && child.signalCode === null) {
        // The group; the command alone if it moved to a group of its own making.
        const signal = (s: NodeJS.Signals): void => {
          if (!signalGroup(group, s)) child.kill(s);
        };
        signal("SIGTERM");
        const timer = setTimeout(() => signal("SIGKILL"), killAfterMs);
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
        multilineTruncated: a.multilineTruncated + b.multilineTruncated,
      };
    },
  };
}
