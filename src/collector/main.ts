// Child-process entry point forked by the supervisor: one collector per process, talking to the host on fd 3.
//
//   host ──INIT──▶ build collector ──READY──▶ host
//        ◀──RECORDS (credit-limited)── collector reads input
//   host ──STOP──▶ stop reading, flush ──DRAINED──▶ host ──EXIT──▶ exit(0)
//   what it runs ends by itself, or fails ──FATAL──▶ host (has read all before it) ──EXIT──▶ exit(0 or 1)
//   host gone (fd 3 closed, or re-parented) ──▶ kill own process group, exit
//   every way out ──▶ kill the process groups the collector started (a command's is not ours)
import { FrameType, STOP_MARGIN_MS } from "../channel/protocol.js";
import { signalGroup } from "../util/process-group.js";
import type { CollectorSpec } from "../sources/specs.js";
import { ChildChannel } from "./runtime/channel.js";
import type { CollectorRun } from "./runtime/run.js";
import { errorText } from "../util/text.js";

let run: CollectorRun | undefined;
let spec: CollectorSpec | undefined;
let stopping = false;
/** Set when what the collector runs ended by itself: the code this process exits with once the host says EXIT. */
let endedCode: number | undefined;
/** A failure was reported (see fatal): the host's EXIT ends this process hard. */
let failed = false;
const parentPid = process.ppid;

/** SIGKILL the process groups this collector started outside its own (a command's); they do not share its fate. */
function killStartedGroups(): void {
  for (const group of run?.processGroups?.() ?? []) signalGroup(group, "SIGKILL");
}

function shutdownHard(code: number): never {
  // Take whatever this collector started with it: the command's group, then our own (the SIGKILL ends us too, so
  // the exit hook below would not run).
  killStartedGroups();
  signalGroup(process.pid, "SIGKILL"); // false when not a group leader (started by hand): fall through
  process.exit(code);
}

const channel = new ChildChannel({
  init(value) {
    spec = value as CollectorSpec;
    channel.begin(spec.seq, spec.credit);
    start(spec).then(
      (r) => {
        run = r;
        channel.send(FrameType.READY, { pid: process.pid, info: r.info, groups: r.processGroups?.() ?? [] });
        sendStats();
      },
      // A checkpoint it cannot use (locked by another process) keeps its code: the host rejects start() with it.
      (error: unknown) => fatal((error as { code?: unknown } | null)?.code === "ERR_CHECKPOINT" ? "ERR_CHECKPOINT" : "ERR_COLLECTOR_START", error),
    );
  },
  stop(withinMs) {
    void stopReading(withinMs)?.then(async () => {
      channel.send(FrameType.DRAINED, {});
      await channel.drain();
    });
  },
  exit() {
    if (failed) void channel.drain().then(() => shutdownHard(1));
    else void finish();
  },
  ack(seq) {
    run?.ack?.(seq);
  },
  hostGone() {
    shutdownHard(0);
  },
});
channel.onCredit = () => run?.resume();

/**
 * One entry per collector kind; each gets its spec and the channel, and returns the handle main drives. Each kind
 * loads only its own runtime: a file collector never loads http, tls, dgram or child_process, which saves every
 * collector process start-up time and memory.
 */
const RUNNERS = {
  command: async () => (await import("./runtime/command.js")).runCommand,
  script: async () => (await import("./runtime/script.js")).runScript,
  file: async () => (await import("./runtime/file.js")).runFile,
  network: async () => (await import("./runtime/network.js")).runNetwork,
} as const;

function isKind(kind: unknown): kind is keyof typeof RUNNERS {
  return typeof kind === "string" && Object.hasOwn(RUNNERS, kind);
}

// The host names the kind on the command line (see spawnCollector): its runtime loads while INIT is awaited, which
// may come only once the host's sinks are open. A load that fails here fails again, reported, in runnerFor.
const kindHint = process.argv[2];
if (isKind(kindHint)) void RUNNERS[kindHint]().catch(() => undefined);

async function runnerFor(s: CollectorSpec): Promise<CollectorRun> {
  switch (s.kind) {
    case "command":
      return (await RUNNERS.command())(s, channel);
    case "script":
      return (await RUNNERS.script())(s, channel);
    case "file":
      return (await RUNNERS.file())(s, channel);
    case "network":
      return (await RUNNERS.network())(s, channel);
    default:
      throw new Error(`unknown collector kind ${JSON.stringify((s as { kind: unknown }).kind)}`);
  }
}

async function start(s: CollectorSpec): Promise<CollectorRun> {
  const r = await runnerFor(s);
  // A collector that ends by itself (a command exits, a script returns or throws) is a crash to the supervisor,
  // which restarts it with backoff; one that was asked to stop says DRAINED from stop() instead.
  void r.done.then((exit) => {
    channel.flush();
    sendStats();
    if (stopping && exit.beforeStop !== true) return;
    endedCode = exit.code === 0 ? 0 : 1;
    // The host reports the exit code, signal and stderr of what ended (the command), not this process's own.
    channel.send(FrameType.FATAL, {
      code: "ERR_COLLECTOR_CRASHED",
      message: exit.error ?? `${s.kind} exited with ${exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`}`,
      exitCode: exit.code,
      signal: exit.signal,
      stderrTail: exit.stderrTail,
    });
    // It ended before a stop that came while its last output waited for credit: reported, and the stop goes on.
    // Otherwise the host answers with EXIT (finish) once it has read the FATAL, and so all before it. Exiting first
    // would close our end of the channel under frames a busy host has not read yet: its next CREDIT or ACK then fails
    // with EPIPE, and Node destroys its socket with those frames, the command's last lines among them.
  });
  return r;
}

let finishing: Promise<void> | undefined;
/**
 * Persist final positions (once; what is settled by now: a script's cursor, the rest is replayed by the next
 * incarnation), flush the channel, exit.
 */
function finish(): Promise<void> {
  finishing ??= Promise.resolve(run?.close?.())
    .catch(() => undefined)
    .then(() => channel.drain())
    .then(() => process.exit(failed ? 1 : (endedCode ?? 0)));
  return finishing;
}

/**
 * Stop reading input once (STOP frame or SIGTERM); resolves when what was read is pushed. `withinMs`: how long
 * the host waits for DRAINED (its remaining stop time, or killAfterMs + DRAINED_MARGIN_MS if that is shorter). The collector's own grace (`killAfterMs`) is cut to fit inside it, with room left for the
 * last STATS and DRAINED: a host that kills us first would never hear what we still held (counted as `unsent`).
 */
function stopReading(withinMs?: number): Promise<void> | undefined {
  if (stopping || run === undefined) return undefined;
  stopping = true;
  let grace = spec?.killAfterMs ?? 5_000;
  if (withinMs !== undefined) grace = Math.min(grace, Math.max(0, withinMs - Math.min(STOP_MARGIN_MS, withinMs / 4)));
  return run.stop(grace).then(sendStats);
}

function sendStats(): void {
  if (run !== undefined) channel.send(FrameType.STATS, { ...run.counters(), ...channel.counters() });
}

/** Report a failure (the first one: what follows is its consequence), then wait for the host's EXIT, as in start(). */
function fatal(code: string, error: unknown): void {
  if (failed) return;
  failed = true;
  // What it had framed and its counters go first: the host's EXIT answer ends this process hard, and the once a
  // second STATS would never carry this incarnation's last counts (lines read, parse errors, invalid records).
  channel.flush();
  sendStats();
  channel.send(FrameType.FATAL, { code, message: errorText(error) });
}

// Stats once a second; and if we were re-parented (host died without closing the pipe), leave.
const ticker = setInterval(() => {
  if (process.ppid !== parentPid) shutdownHard(0);
  sendStats();
}, 1_000);
ticker.unref();

process.on("exit", () => {
  // A collector function that calls process.exit() itself skips finish(): hand over what is framed, and the counters,
  // on the way out. The pipe takes them at once while it has room; behind writes still queued they are cut, never
  // reordered.
  channel.flush();
  sendStats();
  killStartedGroups();
});
process.on("uncaughtException", (error) => fatal("ERR_COLLECTOR_CRASHED", error));
process.on("unhandledRejection", (error) => fatal("ERR_COLLECTOR_CRASHED", error));
process.on("SIGTERM", () => {
  // Host-initiated stop arrives as STOP then EXIT on the channel; a bare SIGTERM means "stop now", cleanly.
  void (async () => {
    await stopReading();
    await finish();
  })();
});
