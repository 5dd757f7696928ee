// Host side of one source: supervises its collector child (ready handshake, restarts with backoff, crash-loop
// breaker), decodes its frames into entries for the router, and grants credit as the router admits them.
//
//   spawn ─▶ INIT ─▶ READY? ──no (timeout/exit)──▶ coded error, restart per policy
//                      │yes
//                      ▼
//   RECORDS ─▶ entries ─▶ inbox ─▶ router admits ─▶ CREDIT back ─▶ child reads more
//   exit (unexpected) ─▶ policy.onExit ─▶ restart after delay | breaker: "source:failed"
import { isUtf8 } from "node:buffer";
import { setImmediate as immediate } from "node:timers";
import { AggregatorError, CheckpointError, CollectorError, errorForCode, isErrorCode } from "../errors.js";
import { DRAINED_MARGIN_MS, FrameDecoder, FrameType, MAX_RECORD_BYTES, ProtocolError, decodeRecords, encodeJson } from "../channel/protocol.js";
import { AckTracker } from "../pipeline/ack-tracker.js";
import { Entry } from "../pipeline/entry.js";
import { Ring } from "../pipeline/ring.js";
import { engineSlice } from "../pipeline/slice.js";
import { COLLECTOR_DROP_KEYS, isGaugeKey, type SourceCounters, type SourceMetricsSnapshot } from "../report.js";
import { normalizeLevel } from "../record.js";
import { redact, redactObject } from "../util/redact.js";
import { type ExitStatus, type SpawnedCollector, spawnCollector, terminate, track } from "./child-process.js";
import { type ResolvedRestart, RestartPolicy } from "./restart-policy.js";
import type { SourceHost, SourceRuntime } from "./runtime.js";
import type { CollectorSpec } from "./specs.js";
import { errorText } from "../util/text.js";
import { realClearInterval, realNow, realSetImmediate, realSetInterval } from "../util/real-time.js";

/** A running collector silent this long (it sends its counters once a second) is reported stuck. */
const STALL_MS = 10_000;

export interface CollectorRuntimeOptions {
  name: string;
  kind: string;
  /** Builds the INIT spec for an incarnation (seq and credit filled in per start). */
  spec: (base: { name: string; hostName: string; seq: number; credit: { records: number; bytes: number }; killAfterMs: number }) => CollectorSpec;
  restart: ResolvedRestart;
  startTimeoutMs: number;
  killAfterMs: number;
  execArgv: string[];
  env?: NodeJS.ProcessEnv;
  /** Receives the collector's READY info (each incarnation). */
  onReady?: (info: unknown) => void;
  /**
   * Whether the source runs again after what it ran ended by itself (a command's exit, with its code or signal).
   * False ends the source there (state `stopped`). @default always true (restarted per `restart`)
   */
  restartsAfterEnd?: (exit: ExitStatus) => boolean;
}

type State = SourceMetricsSnapshot["state"];

interface ExitReport {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string[];
}

/** Stderr lines an exit report carries (the collector process's own and its command's together). */
const STDERR_TAIL_LINES = 20;

/**
 * What a collector may send past its credit before the host stops reading its channel: a RECORDS frame's worth
 * (ChildChannel sends a frame at 1,024 records or 256 KiB, plus the record that crossed the mark, up to
 * MAX_RECORD_BYTES). The built-in collectors stop within that (line collectors at the line that spends the credit, the
 * network collector within a slice). One that does not would otherwise grow the host's inbox without limit: a bug, or
 * a user's ScriptSource writing to the channel itself.
 */
const OVERRUN_RECORDS = 1024;
const OVERRUN_BYTES = 256 * 1024 + MAX_RECORD_BYTES;

/**
 * A FATAL frame's account of what ended by itself (a command's exit code or signal, its last stderr lines), or
 * `undefined` when it has none (the collector itself failed, or the command never ran).
 */
function exitReport(f: { exitCode?: unknown; signal?: unknown; stderrTail?: unknown }): ExitReport | undefined {
  const code = Number.isInteger(f.exitCode) ? (f.exitCode as number) : null;
  const signal = typeof f.signal === "string" && /^SIG[A-Z0-9]+$/.test(f.signal) ? (f.signal as NodeJS.Signals) : null;
  if (code === null && signal === null) return undefined;
  const tail = Array.isArray(f.stderrTail) ? f.stderrTail.filter((l): l is string => typeof l === "string") : [];
  return { code, signal, stderrTail: tail.slice(-STDERR_TAIL_LINES).map((l) => (l.length > 1001 ? `${l.slice(0, 1000)}…` : l)) };
}

export class CollectorRuntime implements SourceRuntime {
  readonly inbox = new Ring<Entry>(1024);
  readonly acks: AckTracker;
  private state: State = "idle";
  private proc: SpawnedCollector | undefined;
  private nextSeq = 0;
  private readonly policy: RestartPolicy;
  private restarts = 0;
  /** Bytes of the entries in `inbox`. */
  private inboxBytes = 0;
  /** The current incarnation's channel is not read: it sent past its credit and the inbox is over the window. */
  private overrunPaused = false;
  /** Times that happened (`collector.overCreditPauses` in the report). */
  private overCreditPauses = 0;
  private emitted = 0;
  private admitted = 0;
  private collector: Record<string, number> = {};
  /** Counters of earlier incarnations, so totals survive restarts. */
  private carried: Record<string, number> = {};
  /** The incarnation whose counters were carried at its exit: a STATS of it read later adds what grew (noteLateStats). */
  private countersCarried: SpawnedCollector | undefined;
  /** Its counters as last carried: a later STATS of it adds only what grew since. */
  private carriedLast: Record<string, number> = {};
  private restartTimer: NodeJS.Timeout | undefined;
  private drainedResolve: (() => void) | undefined;
  private expectedExit = false;
  /** The current incarnation was sent EXIT: nothing more is written to it (see sendExit). */
  private exitSent = false;
  private failedError: CollectorError | undefined;
  /**
   * What ended by itself in the current incarnation, from its FATAL frame: a command's exit code, signal and last
   * stderr lines. Reported instead of the collector process's own exit, which only says that it gave up.
   */
  private ended: ExitReport | undefined;
  /** When this incarnation last sent anything (its counters come once a second), and the watch on it. */
  private lastHeard = 0;
  private stallWatch: NodeJS.Timeout | undefined;
  /** A stall was reported and the collector has not been heard since. */
  private stalled = false;
  /** The incarnation the host killed for a reason it reported already (a protocol error): its exit says no more. */
  private killedForCause: SpawnedCollector | undefined;

  constructor(
    private readonly host: SourceHost,
    private readonly o: CollectorRuntimeOptions,
  ) {
    this.acks = new AckTracker(o.name);
    this.acks.onAdvance(this.scheduleAck);
    this.policy = new RestartPolicy(o.restart);
  }

  private ackQueued = false;
  /** Tell the collector how far records are settled, at most once per turn of the event loop. */
  private readonly scheduleAck = (): void => {
    if (this.ackQueued) return;
    this.ackQueued = true;
    setImmediate(() => {
      this.ackQueued = false;
      this.sendAck();
    });
  };

  private sendAck(): void {
    const proc = this.proc;
    if (proc === undefined || this.exitSent || proc.child.exitCode !== null || proc.channel.destroyed) return;
    proc.channel.write(encodeJson(FrameType.ACK, { seq: this.acks.watermark }));
  }

  /**
   * The last frames to an incarnation: how far its records are settled (it commits that before it exits), then EXIT.
   * A collector exits only when told so (or killed): a write to a channel whose collector is gone fails with EPIPE,
   * and Node then destroys the socket with all the collector sent that was not read yet. So nothing is written to it
   * after EXIT either.
   */
  private sendExit(proc: SpawnedCollector): void {
    if (this.exitSent || proc.child.exitCode !== null || proc.channel.destroyed) return;
    this.sendAck();
    proc.channel.write(encodeJson(FrameType.EXIT, {}));
    this.exitSent = true;
  }

  /**
   * EXIT once every record the incarnation sent is settled (or after `killAfterMs`): its last ACK then covers them, and
   * it commits their positions or cursor before it exits. Told to exit at once, a one-shot script lost the cursors of
   * its last pages, and its next run sent them again. The wait is bounded: a sink that is down must not hold an ended
   * collector, and its restart, for ever; what is not settled by then is read again.
   */
  private exitWhenSettled(proc: SpawnedCollector): void {
    const until = Date.now() + this.o.killAfterMs;
    const attempt = (): void => {
      if (proc !== this.proc || this.exitSent || this.state === "stopping" || this.state === "stopped") return;
      if (this.acks.watermark >= this.nextSeq || Date.now() >= until) {
        this.sendExit(proc);
        return;
      }
      setTimeout(attempt, 10);
    };
    attempt();
  }

  get name(): string {
    return this.o.name;
  }

  get kind(): string {
    return this.o.kind;
  }

  /**
   * A collector process booted ahead of start(), waiting for its INIT (see prepare), or undefined. It has read
   * nothing and run nothing yet: ending it has no effect beyond the process.
   */
  private prepared: SpawnedCollector | undefined;

  /**
   * Boot the first collector process now, while the aggregator still opens its sinks: Node's start-up and the
   * collector's module loading (some 100 to 200 ms of a core) then overlap a sink's open(), which for an
   * Elasticsearch sink loads its client library. The process only gets its INIT, and so starts its command or reads
   * its files, in start(). A failed spawn is left for start() to meet and report.
   */
  prepare(): void {
    if (this.state !== "idle" || this.proc !== undefined || this.prepared !== undefined) return;
    try {
      this.prepared = this.spawn();
    } catch {
      // start() spawns again, and reports what fails
    }
  }

  /** A new collector process of this source, tracked (killed if the host exits). Throws when none can be made. */
  private spawn(): SpawnedCollector {
    const proc = spawnCollector({ execArgv: this.o.execArgv, env: this.o.env, kind: this.o.kind });
    track(proc);
    return proc;
  }

  start(): Promise<void> {
    return this.launch();
  }

  /** One incarnation: spawn, INIT, wait for READY. */
  private launch(): Promise<void> {
    // A new incarnation starts with a full window: credit owed to the previous one is void.
    this.unsentRecords = 0;
    this.unsentBytes = 0;
    this.grantedRecords = this.host.credit.records;
    this.grantedBytes = this.host.credit.bytes;
    this.receivedRecords = 0;
    this.receivedBytes = 0;
    this.overrunPaused = false;
    this.state = this.restarts > 0 ? "restarting" : "starting";
    let proc = this.prepared;
    this.prepared = undefined;
    // One that died while it waited (killed from outside) is not used: a fresh process takes its place.
    if (proc !== undefined && (proc.child.exitCode !== null || proc.child.signalCode !== null || proc.channel.destroyed)) {
      void terminate(proc, 0);
      proc = undefined;
    }
    if (proc === undefined) {
      try {
        proc = this.spawn();
      } catch (error) {
        return Promise.reject(this.spawnFailed(error));
      }
    }
    // Its run counts from now (the restart policy's uptime), not from when it booted ahead (see prepare).
    proc.startedAt = Date.now();
    this.proc = proc;
    this.expectedExit = false;
    this.exitSent = false;
    this.ended = undefined;
    let ready = false;
    const seqStart = this.nextSeq;
    return new Promise<void>((resolve, reject) => {
      const fail = (error: CollectorError | CheckpointError): void => {
        if (ready) return;
        ready = true; // settle once
        clearTimeout(timer);
        reject(error);
      };
      const timer = setTimeout(() => {
        const err = this.collectorError(
          "ERR_COLLECTOR_START_TIMEOUT",
          `collector "${this.name}" did not say ready within ${this.o.startTimeoutMs} ms`,
          proc,
        );
        fail(err);
        void terminate(proc, 0);
      }, this.o.startTimeoutMs);
      timer.unref();

      const onFrame = (type: FrameType, payload: Buffer): void => {
        if (proc !== this.proc) return; // a late frame from an old incarnation
        switch (type) {
          case FrameType.READY:
            if (!ready) {
              const r = JSON.parse(payload.toString("utf8")) as { info?: unknown; groups?: unknown };
              // Never 0 or 1: kill(-0) is our own group, kill(-1) every process we may signal.
              if (Array.isArray(r.groups)) for (const g of r.groups) if (Number.isSafeInteger(g) && (g as number) > 1) proc.groups.push(g as number);
              this.o.onReady?.(r.info);
              ready = true;
              clearTimeout(timer);
              this.state = "running";
              this.watchForStalls(proc);
              this.host.emit("source:ready", { source: this.name, pid: proc.pid });
              // How far earlier incarnations' records are settled: a script's cursor committed before it emits
              // anything is written against it, not held until a record of its own settles.
              this.sendAck();
              resolve();
            }
            break;
          case FrameType.RECORDS:
            this.onRecords(payload);
            break;
          case FrameType.STATS:
            // One read after its exit was handled (the channel outlived the exit wait) is its past: carried already.
            if (this.countersCarried === proc) this.noteLateStats(JSON.parse(payload.toString("utf8")) as Record<string, number>);
            else this.noteStats(JSON.parse(payload.toString("utf8")) as Record<string, number>);
            break;
          case FrameType.DRAINED:
            this.drainedResolve?.();
            break;
          case FrameType.FATAL: {
            const f = JSON.parse(payload.toString("utf8")) as { code?: string; message?: string; exitCode?: unknown; signal?: unknown; stderrTail?: unknown };
            this.ended = exitReport(f);
            const err = this.collectorError("ERR_COLLECTOR_CRASHED", `collector "${this.name}": ${f.message ?? "fatal error"}`, proc);
            // A start that failed on its checkpoint (another process holds its lock) is no crash: its own code.
            if (!ready && f.code === "ERR_CHECKPOINT") fail(new CheckpointError(err.message, { source: this.name }));
            else if (!ready) fail(err);
            // A command that exited 0 and is not run again (restartOnExit) simply ended: no error.
            else if (!(this.ended?.code === 0 && this.ended.signal === null && !this.restartsAfter(this.ended))) {
              this.host.emit("source:error", { source: this.name, error: err });
            }
            // Its last word (what it ran ended, or it failed), so all it sent is read: it waits to be let go (see
            // sendExit), once what it sent is settled. Stopping, close() does that (a FATAL may come before DRAINED).
            if (this.state !== "stopping" && this.state !== "stopped") this.exitWhenSettled(proc);
            break;
          }
          case FrameType.LOG: {
            // Collector diagnostics. Those with a code (a checkpoint write that failed, say) are coded errors, of the
            // class of their code (a CheckpointError for ERR_CHECKPOINT), as if the host had raised them. The child is
            // of the same build as this host, so it sends no code the host does not know.
            const l = JSON.parse(payload.toString("utf8")) as { code?: string; message?: string; level?: unknown; fields?: unknown };
            if (isErrorCode(l.code)) {
              const err = errorForCode(l.code, `collector "${this.name}": ${l.message ?? l.code}`, { source: this.name });
              this.host.emit("source:error", { source: this.name, error: err });
            } else {
              // Uncoded: a collector's own diagnostics (a ScriptSource's `log`), telemetry for the host, redacted.
              const fields = typeof l.fields === "object" && l.fields !== null ? (redactObject(l.fields) as Record<string, unknown>) : undefined;
              this.host.emit("source:log", {
                source: this.name,
                level: normalizeLevel(l.level) ?? "info",
                message: redact(String(l.message ?? "")),
                ...(fields === undefined ? {} : { fields }),
              });
            }
            break;
          }
          default:
            throw new ProtocolError(`unexpected frame type ${type} from a collector`);
        }
      };
      // While a sink of this source packs what arrives, RECORDS spread over pipe reads stay in them (see FrameDecoder).
      const decoder = new FrameDecoder(onFrame, undefined, {
        type: FrameType.RECORDS,
        when: () => this.host.router.packs(this),
        onPieces: (pieces) => {
          if (proc === this.proc) this.onRecords(pieces);
        },
      });
      proc.channel.on("data", (chunk: Buffer) => {
        this.heard();
        engineSlice.spent(); // starts this turn's slice, if nothing else did
        try {
          decoder.push(chunk);
          if (engineSlice.spent()) this.yieldTurn(proc);
        } catch (error) {
          // Garbage on the channel: this incarnation is broken. Kill it; the exit path restarts it.
          const err = this.collectorError(
            "ERR_CHANNEL_PROTOCOL",
            `collector "${this.name}" sent an invalid frame: ${errorText(error)}`,
            proc,
          );
          proc.channel.removeAllListeners("data");
          if (!ready) fail(err);
          else this.host.emit("source:error", { source: this.name, error: err });
          this.killedForCause = proc;
          void terminate(proc, 0);
        }
      });
      proc.channel.on("error", () => {
        // EPIPE/ECONNRESET when the child dies: the exit handler reports it.
      });
      // A channel paused for overrunning its credit is read to its end once the process is gone (a pipe's worth at
      // most), so its last frames (FATAL, STATS) still arrive and the exit is reported without delay.
      proc.child.once("exit", () => {
        if (proc === this.proc && this.overrunPaused) {
          this.overrunPaused = false;
          proc.channel.resume();
        }
      });
      void proc.exited.then((exit) => {
        clearTimeout(timer);
        if (!ready) {
          fail(
            this.collectorError(
              "ERR_COLLECTOR_CRASHED",
              `collector "${this.name}" exited before it was ready (${exit.signal ?? `code ${exit.code}`})`,
              proc,
            ),
          );
        }
        this.onExit(proc, exit);
      });
      const spec = this.o.spec({
        name: this.name,
        hostName: this.host.hostName,
        seq: seqStart,
        credit: this.host.credit,
        killAfterMs: this.o.killAfterMs,
      });
      proc.channel.write(encodeJson(FrameType.INIT, spec));
    });
  }

  private onRecords(payload: Buffer | Buffer[]): void {
    // Throws ProtocolError on a malformed frame; the channel's data handler turns that into a restart.
    const { header, starts, ends, bufs } = decodeRecords(payload);
    if (header.seq !== this.nextSeq) {
      throw new ProtocolError(`records out of sequence: expected seq ${this.nextSeq}, got ${header.seq}`);
    }
    const target = this.acks;
    let bad = 0;
    let recordBytes = 0;
    const count = starts.length;
    for (let i = 0; i < count; ) {
      // A run of records in one buffer: the frame, or one of the pipe reads it came in (see decodeRecords).
      const buf = bufs === undefined ? (payload as Buffer) : bufs[i]!;
      let to = count;
      if (bufs !== undefined) for (to = i + 1; to < count && bufs[to] === buf; ) to++;
      // One check of the run's records (simdutf: far below a microsecond per KiB; not the frame's binary header,
      // which need not be UTF-8); record by record only if it fails.
      const utf8 = isUtf8(buf.subarray(starts[i], ends[to - 1]));
      for (; i < to; i++) {
        const start = starts[i]!;
        const end = ends[i]!;
        recordBytes += end - start;
        // Records are built and serialized by our own collector code; a line that is not an object, or not UTF-8,
        // is a bug or corruption: count it rather than ship garbage (and an entry's bytes must be its text's UTF-8).
        if (
          end - start < 2 ||
          buf[start] !== 123 /* { */ ||
          buf[end - 1] !== 125 /* } */ ||
          (!utf8 && !isUtf8(buf.subarray(start, end)))
        ) {
          bad++;
          target.settle(this.nextSeq + i);
          continue;
        }
        this.inbox.push(new Entry(buf, end - start, target, this.nextSeq + i, undefined, start));
        this.inboxBytes += end - start;
      }
    }
    this.nextSeq += count;
    this.emitted += count - bad;
    this.receivedRecords += count;
    this.receivedBytes += recordBytes;
    this.checkOverrun();
    if (this.unsentRecords > 0 && this.creditLow()) this.sendCredit();
    if (bad > 0) this.host.dropUnserializable(this.name, bad, "collector sent a record that is not a JSON object in UTF-8");
    this.host.router.pump(this, true);
  }

  /** Admitted but not yet credited back (see onAdmitted). */
  private unsentRecords = 0;
  private unsentBytes = 0;
  /** This incarnation's window plus the credit sent to it, and what arrived from it: its credit left, as we see it. */
  private grantedRecords = 0;
  private grantedBytes = 0;
  private receivedRecords = 0;
  private receivedBytes = 0;

  /**
   * The engine's slice of this turn of the loop is used up (see pipeline/slice.ts): read no more of this channel in
   * this turn, so the host's timers and sockets get theirs before the next chunk. Reading goes on from the turn's
   * check phase, unless the overrun guard holds the channel by then (its resume is onAdmitted's).
   */
  private yieldTurn(proc: SpawnedCollector): void {
    if (proc.channel.isPaused()) return;
    proc.channel.pause();
    immediate(() => {
      if (!(proc === this.proc && this.overrunPaused)) proc.channel.resume();
    });
  }

  /**
   * The host's memory bound, whatever the collector does: once this incarnation has sent more than a frame's worth
   * past the credit it was given, and the inbox is over the window by as much, stop reading its channel until the
   * inbox is back under the window (onAdmitted). The collector's writes then back up in the pipe and in its own
   * process. An earlier incarnation's leftovers alone never trigger it: a restart may hold up to two windows.
   */
  private checkOverrun(): void {
    const proc = this.proc;
    // Once the process is gone, what is left in its pipe is read to the end (see the exit handler in launch); once
    // it was asked to stop, what it hands over is read to its DRAINED (see stopInput).
    if (this.overrunPaused || this.state === "stopping" || this.state === "stopped" || proc === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    const window = this.host.credit;
    const overCredit = this.receivedRecords - this.grantedRecords > OVERRUN_RECORDS || this.receivedBytes - this.grantedBytes > OVERRUN_BYTES;
    const overWindow = this.inbox.length > window.records + OVERRUN_RECORDS || this.inboxBytes > window.bytes + OVERRUN_BYTES;
    if (!overCredit || !overWindow) return;
    this.overrunPaused = true;
    this.overCreditPauses++;
    proc.channel.pause();
  }

  onAdmitted(count: number, bytes: number): void {
    this.admitted += count;
    this.inboxBytes -= bytes;
    if (this.overrunPaused && this.inbox.length <= this.host.credit.records && this.inboxBytes <= this.host.credit.bytes) {
      this.overrunPaused = false;
      this.proc?.channel.resume();
    }
    // Credit back exactly what left the inbox, but in quarters of the window rather than per admission: a frame
    // each, and a wake-up for the child, which cost more than the records with many children. Sooner when the
    // child is about to run out (see creditLow), so it never waits while credit is owed to it. (Entries of an
    // earlier incarnation credit the new one: it started with a full window, so it may briefly hold more than one
    // window; bounded by two.)
    this.unsentRecords += count;
    this.unsentBytes += bytes;
    const window = this.host.credit;
    if (this.unsentRecords >= Math.ceil(window.records / 4) || this.unsentBytes >= Math.ceil(window.bytes / 4) || this.creditLow()) {
      this.sendCredit();
    }
  }

  /**
   * The child has less than a quarter of its window left, counting everything it sent as arrived (what is still in
   * the pipe only makes it less). Once it is out, everything it sent arrives and this holds, so credit owed then goes
   * out at the next admission or arrival: a stalled child stalls at exactly queue + window.
   */
  private creditLow(): boolean {
    const window = this.host.credit;
    return this.grantedRecords - this.receivedRecords < window.records / 4 || this.grantedBytes - this.receivedBytes < window.bytes / 4;
  }

  private sendCredit(): void {
    const proc = this.proc;
    if (this.unsentRecords > 0 && proc !== undefined && !this.exitSent && proc.child.exitCode === null && !proc.channel.destroyed) {
      proc.channel.write(encodeJson(FrameType.CREDIT, { records: this.unsentRecords, bytes: this.unsentBytes }));
      this.grantedRecords += this.unsentRecords;
      this.grantedBytes += this.unsentBytes;
    }
    this.unsentRecords = 0;
    this.unsentBytes = 0;
  }

  private onExit(proc: SpawnedCollector, processExit: ExitStatus): void {
    if (proc !== this.proc) return;
    this.carryCounters();
    this.countersCarried = proc;
    const expected = this.expectedExit || this.state === "stopping" || this.state === "stopped";
    // A command's own exit when it ended by itself; the collector process's otherwise (killed, crashed, stopped).
    const exit = this.ended ?? processExit;
    // What it ran ended, and is not to run again: the source is done (before the event, so listeners see it).
    const done = !expected && this.ended !== undefined && !this.restartsAfter(this.ended);
    if (done) this.state = "stopped";
    this.host.emit("source:exit", {
      source: this.name,
      pid: proc.pid,
      exitCode: exit.code,
      signal: exit.signal,
      forceKilled: proc.forceKilled,
      expected,
      restarts: this.restarts,
      stderrTail: this.stderrTail(proc),
    });
    this.drainedResolve?.();
    if (expected || done) return;
    // Gone without its last word (a FATAL reports itself above): `process.exit()` in a script, the OOM killer, a
    // signal, a V8 abort. As much a crash as a command's failing exit.
    if (this.ended === undefined && this.state === "running" && this.killedForCause !== proc) {
      const how = processExit.signal !== null ? `was killed by ${processExit.signal}` : `exited with code ${processExit.code}`;
      this.host.emit("source:error", {
        source: this.name,
        error: this.collectorError("ERR_COLLECTOR_CRASHED", `collector "${this.name}" ${how} without saying why`, proc, processExit),
      });
    }
    // What ended each time may be a command that exits 0 and is run again ("always"): not a crash. Say what the last did.
    const last = exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
    this.scheduleRestart(Date.now() - proc.startedAt, () =>
      this.collectorError(
        "ERR_COLLECTOR_FAILED",
        `collector "${this.name}" ended ${this.o.restart.maxRestarts + 1} times within ${this.o.restart.windowMs} ms (the last: ${last}); giving up`,
        proc,
        exit,
      ),
    );
  }

  /** Something came from the collector: it is alive. */
  private heard(): void {
    const now = realNow();
    if (this.stalled) {
      this.stalled = false;
      this.host.emit("source:log", { source: this.name, level: "info", message: `collector "${this.name}" is sending again after ${Math.round(now - this.lastHeard)} ms without a word` });
    }
    this.lastHeard = now;
  }

  /**
   * A running collector sends its counters once a second whatever it does. One silent for STALL_MS is stuck on
   * something synchronous (a regex backtracking without end on one line): nothing else would ever say so, as its
   * process is alive and the source `running`. Reported once per stall; not killed, as its next run would stop at
   * the same line.
   */
  private watchForStalls(proc: SpawnedCollector): void {
    // On the monotonic clock and Node's own timers: a fake Date (a user's tests), an NTP step or fake timers that
    // jump ahead must not make a collector that is sending look silent.
    realClearInterval(this.stallWatch);
    this.lastHeard = realNow();
    this.stalled = false;
    const check = (): void => {
      if (proc !== this.proc || this.state !== "running" || proc.child.exitCode !== null || proc.child.signalCode !== null) {
        realClearInterval(this.stallWatch);
        this.stallWatch = undefined;
        return;
      }
      // Not read by the host (its overrun guard holds the channel), the collector's frames wait in the pipe.
      if (this.overrunPaused || proc.channel.isPaused()) this.lastHeard = realNow();
      const quiet = realNow() - this.lastHeard;
      if (this.stalled || quiet < STALL_MS) return;
      // A host whose own loop was held finds this timer late with the frames still unread: look again after they are.
      realSetImmediate(() => {
        if (proc !== this.proc || this.state !== "running" || this.stalled) return;
        const silent = Math.round(realNow() - this.lastHeard);
        if (silent < STALL_MS) return;
        this.stalled = true;
        this.host.emit("source:error", {
          source: this.name,
          error: this.collectorError(
            "ERR_COLLECTOR_STALLED",
            `collector "${this.name}" has sent nothing, not even its counters, for ${silent} ms: it is stuck on something synchronous (a pattern that backtracks without end on one line, a loop in a script)`,
            proc,
          ),
        });
      });
    };
    this.stallWatch = realSetInterval(check, 1_000);
    this.stallWatch.unref();
  }

  private restartsAfter(exit: ExitReport): boolean {
    return this.o.restartsAfterEnd?.(exit) ?? true;
  }

  /**
   * The process could not even be spawned (out of file descriptors or memory): a crash at once, restarted with the
   * same backoff (the condition may pass). Returns the error the start attempt rejects with.
   */
  private spawnFailed(cause: unknown): CollectorError {
    const message = `collector "${this.name}" could not be started: ${errorText(cause)}`;
    this.proc = undefined;
    this.scheduleRestart(0, () =>
      this.collectorError(
        "ERR_COLLECTOR_FAILED",
        `${message}; ${this.o.restart.maxRestarts + 1} failures within ${this.o.restart.windowMs} ms, giving up`,
        undefined,
        undefined,
        cause,
      ),
    );
    return this.collectorError("ERR_COLLECTOR_CRASHED", message, undefined, undefined, cause);
  }

  /** After an incarnation ended unexpectedly: restart it after the policy's backoff, or give up for good. */
  private scheduleRestart(uptimeMs: number, giveUp: () => CollectorError): void {
    // Stopping (a launch that was under way when stopInput() came failed to spawn): no restart, no timer left.
    if (this.state === "stopping" || this.state === "stopped") return;
    const delay = this.policy.onExit(Date.now(), uptimeMs);
    if (delay === undefined) {
      this.state = "failed";
      this.failedError = giveUp();
      this.host.emit("source:failed", { source: this.name, error: this.failedError });
      return;
    }
    this.state = "restarting";
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.state !== "restarting") return;
      this.restarts++;
      this.host.emit("source:restart", { source: this.name, restarts: this.restarts, delayMs: delay });
      this.launch().catch((error: unknown) => {
        if (error instanceof AggregatorError) this.host.emit("source:error", { source: this.name, error });
      });
    }, delay);
    // The timer keeps the process alive, as the collector it replaces did: a host whose only work is shipping would
    // otherwise exit at the first crash, without a restart, an event or a report. stop()/removeSource() clear it.
  }

  discardWaiting(): number {
    const n = this.inbox.length;
    this.inbox.drain();
    this.inboxBytes = 0;
    return n;
  }

  /** This incarnation's counters, as it last reported them; what it dropped since the last report is announced. */
  private noteStats(stats: Record<string, number>): void {
    const before = this.collector;
    this.collector = stats;
    for (const key in COLLECTOR_DROP_KEYS) {
      const more = (stats[key] ?? 0) - (before[key] ?? 0);
      if (more > 0) this.host.dropInCollector(this.name, more, key);
    }
  }

  private carryCounters(): void {
    // Totals carry over to the next incarnation; levels (files open) were the dead one's and start again.
    for (const [k, v] of Object.entries(this.collector)) if (!isGaugeKey(k)) this.carried[k] = (this.carried[k] ?? 0) + v;
    this.carriedLast = this.collector;
    this.collector = {};
  }

  /**
   * A STATS of an incarnation whose counters were carried at its exit (its channel outlived the exit wait): what
   * grew since is carried and announced, not the whole again.
   */
  private noteLateStats(stats: Record<string, number>): void {
    const before = this.carriedLast;
    this.carriedLast = stats;
    for (const [k, v] of Object.entries(stats)) {
      const more = v - (before[k] ?? 0);
      if (more <= 0 || isGaugeKey(k)) continue;
      this.carried[k] = (this.carried[k] ?? 0) + more;
      if (Object.hasOwn(COLLECTOR_DROP_KEYS, k)) this.host.dropInCollector(this.name, more, k);
    }
  }

  async stopInput(deadline: number): Promise<void> {
    if (this.state === "idle") return; // never started: it read nothing (close() ends a booted process)
    if (this.restartTimer !== undefined) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    const proc = this.proc;
    const running = this.state === "running";
    this.state = "stopping";
    // One that was let go after its FATAL has sent all it will (see sendExit): it is only waited for, in close().
    if (proc === undefined || !running || this.exitSent || proc.child.exitCode !== null) return;
    const drained = new Promise<void>((resolve) => {
      this.drainedResolve = resolve;
    });
    // How long we wait for DRAINED: the collector's grace and room for its last frames, within the stop deadline. The
    // collector fits its own grace inside it (see the collector's stopReading), so one that answers in time always
    // does. One that cannot answer (its event loop stuck in a synchronous loop) is left to close()'s SIGTERM and
    // SIGKILL after this, not waited for until the deadline.
    const withinMs = Math.max(0, Math.min(deadline - Date.now(), this.o.killAfterMs + DRAINED_MARGIN_MS));
    proc.channel.write(encodeJson(FrameType.STOP, { withinMs }));
    // What the collector hands over now (a command's last output, past its credit: a pipe's worth or two) is read to
    // DRAINED. Left unread behind the overrun guard, it would hold DRAINED and the last STATS back until the kill, and
    // those records would be in no counter.
    if (this.overrunPaused) {
      this.overrunPaused = false;
      proc.channel.resume();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, withinMs)))]);
    clearTimeout(timer);
  }

  async close(deadline: number): Promise<void> {
    const prepared = this.prepared;
    this.prepared = undefined;
    // Booted but never told what to do (the aggregator stopped, or a sink failed to open, before start()): the
    // source stays idle, as one that was never prepared.
    if (prepared !== undefined) await terminate(prepared, this.o.killAfterMs, deadline);
    if (this.state === "idle") return;
    this.state = "stopping";
    this.expectedExit = true;
    const proc = this.proc;
    if (proc !== undefined) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        try {
          this.sendExit(proc);
        } catch {
          // channel already gone
        }
      }
      await terminate(proc, this.o.killAfterMs, deadline);
    }
    this.state = "stopped";
  }

  private collectorError(
    code: CollectorError["code"],
    message: string,
    /** Undefined when no process was ever made (a failed spawn). */
    proc: SpawnedCollector | undefined,
    exit?: ExitStatus,
    cause?: unknown,
  ): CollectorError {
    const err = new CollectorError(code, message, { source: this.name, cause });
    // What ended by itself (the command) speaks for the incarnation, as in source:exit.
    const ended = proc !== undefined && proc === this.proc ? this.ended : undefined;
    const e = ended ?? exit ?? (proc === undefined ? undefined : { code: proc.child.exitCode, signal: proc.child.signalCode });
    err.exitCode = e?.code ?? null;
    err.signal = e?.signal ?? null;
    err.forceKilled = proc?.forceKilled ?? false;
    err.restarts = this.restarts;
    err.stderrTail = proc === undefined ? [] : this.stderrTail(proc);
    return err;
  }

  /** The last stderr lines of an incarnation: its command's (from FATAL), then the collector process's own. Redacted. */
  private stderrTail(proc: SpawnedCollector): string[] {
    const command = proc === this.proc ? (this.ended?.stderrTail ?? []) : [];
    return [...command, ...proc.stderrTail].slice(-STDERR_TAIL_LINES).map(redact);
  }

  counters(): SourceCounters {
    const c: Record<string, number> = { ...this.carried };
    for (const [k, v] of Object.entries(this.collector)) c[k] = (c[k] ?? 0) + v;
    // The host's own count, beside the collector's (only once it happened: most collectors never overrun).
    if (this.overCreditPauses > 0) c["overCreditPauses"] = this.overCreditPauses;
    const { linesRead = 0, bytesRead = 0, parseErrors = 0, ...rest } = c;
    return {
      emitted: this.emitted,
      admitted: this.admitted,
      settled: this.acks.watermark,
      bytesRead,
      linesRead,
      parseErrors,
      restarts: this.restarts,
      waiting: this.inbox.length,
      collector: rest,
    };
  }

  snapshot(): SourceMetricsSnapshot {
    return { ...this.counters(), kind: this.kind, state: this.state, pid: this.proc?.pid };
  }

  /** The error that marked this source failed (crash loop), if any. */
  get failure(): CollectorError | undefined {
    return this.failedError;
  }
}
