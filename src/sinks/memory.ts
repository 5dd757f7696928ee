// An in-process sink for tests and demos: keeps what it receives, and injects the failures a real destination has.
import type { LogRecord } from "../record.js";
import type { Batch, RecordOutcome, SendContext, SendResult, Sink, SinkMetrics } from "./sink.js";
import { Outcome } from "./sink.js";
import { InvalidOptionError, SinkError } from "../errors.js";
import { checkInt, checkName, checkNumber, checkObject } from "../options.js";
import { describe } from "../pipeline/serialize.js";
import { MAX_TIMER_MS, checkKeys, optionKeys } from "../util/validate.js";
import { WaitForTimeoutError } from "../testing/wait-for.js";
import { checkAborted, sleep, untilSettledOrAborted } from "./abort.js";
import { EntryBatch } from "../pipeline/batch.js";
// `waitForCount` times out on real time even under fake timers (which only the latency should follow).
import { fakeTimersHint, realClearTimeout, realSetTimeout } from "../util/real-time.js";

/** Decides per record; `index` is the record's position in `batch`. */
export type RecordPredicate = (record: LogRecord, index: number, batch: Batch) => boolean;

export interface MemorySinkOptions {
  /** Unique sink name. */
  name: string;
  /** Every send waits this long before it answers (abortable by the send's signal; follows fake timers). @default 0 */
  latencyMs?: number;
  /** The first N sends fail as a whole-batch retry (same as calling `failNext(n)`). @default 0 */
  failNext?: number;
  /** Records matching this are rejected (same as calling `rejectWhen(predicate)`). */
  rejectWhen?: RecordPredicate;
  /**
   * Batch and concurrency suggestions handed to the engine (to test how it honours them); settings on the Aggregator
   * or in addSink() win over them. @default { batch: { maxWaitMs: 0 } }: a batch leaves at the end of its tick.
   */
  pipelineDefaults?: Sink["pipelineDefaults"];
  /**
   * Hold at most this many records, the latest (older ones are let go first): a long or soak test's memory stays
   * bounded. 0 holds none, a counting sink: `delivered` and `metrics()` still count every record. Between reads up
   * to half as many again (at least 1,024) may wait to be let go; every read sees at most `keep`. @default Infinity
   */
  keep?: number;
}

export interface FailNextOptions {
  /** Put into the retry outcome (a server's Retry-After). @default undefined */
  retryAfterMs?: number;
  /** Retry reason. @default "injected_failure" */
  reason?: string;
  /** Throw a retryable `SinkError` instead of returning a retry outcome (both mean "retry the batch"). @default false */
  throw?: boolean;
}

export interface RuleOptions {
  /** Apply the rule to at most this many records, then forget it. @default Infinity */
  times?: number;
  /** (`retryWhen` only) put into the outcome as the server's Retry-After. @default undefined */
  retryAfterMs?: number;
}

export interface WaitForCountOptions {
  /** Reject after this many milliseconds of real time. @default 5000 */
  timeoutMs?: number;
  /** Same as `timeoutMs` (the name of the first releases). */
  timeout?: number;
  /** Stop waiting early (rejects with the signal's reason). */
  signal?: AbortSignal;
}

interface Rule {
  readonly status: "rejected" | "retry";
  readonly when: RecordPredicate;
  readonly reason: string;
  readonly retryAfterMs: number | undefined;
  remaining: number;
}

interface Waiter {
  readonly n: number;
  readonly resolve: () => void;
}

/**
 * Keeps every delivered record, in delivery order, and injects faults on demand.
 *
 * Storage: the canonical JSON of each record is kept; `records` parses it lazily, once, on first read. Records read
 * back are therefore exactly what a JSON-speaking sink would have shipped, and independent of the objects the
 * producer still holds. Batches from the engine are kept as they came and decoded to text only when `json`,
 * `records`, `find` or `messages` is read: a sink that is only counted (`count`, `waitForCount`) never decodes.
 *
 * Faults (all can be set at construction or at run time, and cleared with `clearFaults()`):
 * - `failNext(n)`: the next n sends (counted when a send begins; an aborted send gives its turn back) fail as a
 *   whole-batch retry.
 * - `rejectWhen(pred)` / `retryWhen(pred)`: per-record outcomes; the first matching rule wins.
 * - `setLatency(ms)`, `block()`/`unblock()`, `neverAnswer()`: sends that take long or hang. `block()` holds every
 *   send not yet answered, including one in its latency wait.
 *
 * An aborted send (its `signal` fired while it waited) throws a retryable `SinkError` (`ERR_SINK_SEND`,
 * `cause` = the signal's reason) and stores nothing: its records were not delivered and stay pending.
 */
const WAIT_COUNT_KEYS = optionKeys<WaitForCountOptions>()(["timeoutMs", "timeout", "signal"]);
const MEMORY_KEYS = optionKeys<MemorySinkOptions>()(["name", "latencyMs", "failNext", "rejectWhen", "pipelineDefaults", "keep"]);

export class MemorySink implements Sink {
  readonly name: string;
  readonly pipelineDefaults: Sink["pipelineDefaults"];

  private lines: string[] = [];
  /** Delivered engine batches, in order after `lines`, not decoded yet (their entries' bytes never change). */
  private undecoded: EntryBatch[] = [];
  /** Records held in `undecoded`: all of its batches' entries but the first `skip` of the first one. */
  private undecodedCount = 0;
  /** Entries of `undecoded[0]` already let go (`keep`). */
  private skip = 0;
  /** `parsed[i]` is `lines[i]` parsed; it covers a prefix of `lines`. */
  private parsed: LogRecord[] = [];
  private readonly keep: number;
  /** How far past `keep` deliveries may go before the oldest are let go (reads let go at once). */
  private readonly slack: number;
  private latency: number;
  private failures = 0;
  private failOptions: FailNextOptions = {};
  private rules: Rule[] = [];
  private gate: { promise: Promise<void>; release: () => void } | undefined;
  private hang = false;
  private waiters: Waiter[] = [];

  private sendCount = 0;
  private deliveredCount = 0;
  private deliveredBytes = 0;
  private failedSendCount = 0;
  /** What the last send that threw from a rule's predicate threw. */
  private lastSendError: unknown;
  private abortedSendCount = 0;
  private rejectedCount = 0;
  private retriedCount = 0;
  private inFlightCount = 0;
  private openCount = 0;
  private closeCount = 0;
  private isClosed = false;

  constructor(options: MemorySinkOptions) {
    checkObject("options", options);
    if (options === undefined) throw new InvalidOptionError("Expected `options` to be an object, got `undefined`");
    checkKeys("", options, MEMORY_KEYS);
    checkName("name", options.name);
    checkNumber("latencyMs", options.latencyMs, 0);
    checkInt("failNext", options.failNext, 0);
    checkPredicate("rejectWhen", options.rejectWhen, true);
    checkObject("pipelineDefaults", options.pipelineDefaults);
    checkInt("keep", options.keep, 0, true);
    this.name = options.name;
    this.keep = options.keep ?? Infinity;
    this.slack = Math.max(1024, Math.floor(this.keep / 2));
    this.latency = options.latencyMs ?? 0;
    this.failures = options.failNext ?? 0;
    // A batch leaves at the end of the tick it was written in (or when the send before it returns: concurrency 1)
    // rather than up to a second later, so a test sees its records soon after `await agg.write()`; assert absence
    // after stop(). Settings on the Aggregator or in addSink() still win over this suggestion.
    this.pipelineDefaults = { ...options.pipelineDefaults, batch: { maxWaitMs: 0, ...options.pipelineDefaults?.batch } };
    if (options.rejectWhen !== undefined) this.rejectWhen(options.rejectWhen);
  }

  // ── reading ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Delivered records in order, parsed on first read. A live view, not a copy: the array grows as later records are
   * read (`clear()`, and a read that lets records go under `keep`, start a new one). Keep a snapshot with
   * `[...mem.records]`. The same holds for `json`; `messages()` returns a copy.
   */
  get records(): readonly LogRecord[] {
    const lines = this.held();
    const parsed = this.parsed;
    for (let i = parsed.length; i < lines.length; i++) parsed.push(JSON.parse(lines[i]!) as LogRecord);
    return parsed;
  }

  /** Delivered records as their canonical JSON lines (no trailing newline), in order. */
  get json(): readonly string[] {
    return this.held();
  }

  /** Records currently held (delivered since construction or the last `clear()`; at most `keep`). */
  get count(): number {
    return Math.min(this.lines.length + this.undecodedCount, this.keep);
  }

  /** What reads see: at most `keep` records, decoded. */
  private held(): string[] {
    this.trim();
    return this.decoded();
  }

  /** `lines`, with the undecoded batches decoded into it. */
  private decoded(): string[] {
    if (this.undecodedCount === 0) return this.lines;
    const lines = this.lines;
    const batches = this.undecoded;
    for (let b = 0; b < batches.length; b++) {
      const entries = batches[b]!.entries;
      for (let i = b === 0 ? this.skip : 0; i < entries.length; i++) lines.push(entries[i]!.json);
    }
    this.undecoded = [];
    this.undecodedCount = 0;
    this.skip = 0;
    return lines;
  }

  /** Let go of the oldest held records beyond `keep`: first from `lines`, then from the undecoded batches. */
  private trim(): void {
    let excess = this.lines.length + this.undecodedCount - this.keep;
    if (excess <= 0) return;
    const fromLines = Math.min(excess, this.lines.length);
    if (fromLines > 0) {
      // New arrays: ones handed out by earlier reads stay as they were.
      this.lines = this.lines.slice(fromLines);
      this.parsed = this.parsed.slice(fromLines);
      excess -= fromLines;
    }
    let whole = 0;
    while (excess > 0) {
      const left = this.undecoded[whole]!.length - this.skip;
      if (left <= excess) {
        excess -= left;
        this.undecodedCount -= left;
        this.skip = 0;
        whole++;
      } else {
        this.skip += excess;
        this.undecodedCount -= excess;
        excess = 0;
      }
    }
    if (whole > 0) this.undecoded = this.undecoded.slice(whole);
  }

  /** After a delivery: let go of the oldest once more than `slack` records beyond `keep` wait. */
  private bound(): void {
    if (this.lines.length + this.undecodedCount > this.keep + this.slack) this.trim();
  }

  /** The first held record matching `predicate`. */
  find(predicate: (record: LogRecord, index: number) => boolean): LogRecord | undefined {
    const records = this.records;
    for (let i = 0; i < records.length; i++) if (predicate(records[i]!, i)) return records[i];
    return undefined;
  }

  /** The `message` of every held record, in order. */
  messages(): string[] {
    return this.records.map((r) => r.message);
  }

  /** Forget the held records. Counters (`sends`, `delivered`…) keep counting. */
  clear(): void {
    this.lines = [];
    this.undecoded = [];
    this.undecodedCount = 0;
    this.skip = 0;
    this.parsed = [];
  }

  /**
   * Resolve once at least `n` records are held. Rejects after `timeout` ms (real time, even under fake
   * timers) with a `WaitForTimeoutError` saying how many arrived and what the sink did meanwhile. An `n` above
   * `keep` could never be held: it throws `ERR_INVALID_OPTION` (wait on `delivered` with `waitFor` instead).
   */
  waitForCount(n: number, options: WaitForCountOptions = {}): Promise<void> {
    checkInt("n", n, 0);
    if (n > this.keep) {
      throw new InvalidOptionError(
        `MemorySink "${this.name}" holds at most ${this.keep} records (\`keep\`), so it can never hold ${n}: ` +
          `wait for \`delivered\` with \`waitFor\` instead`,
      );
    }
    checkObject("options", options);
    checkKeys("", options, WAIT_COUNT_KEYS);
    const timeout = options.timeoutMs ?? options.timeout ?? 5000;
    checkNumber("timeout", timeout, 0);
    if (timeout > MAX_TIMER_MS) throw new InvalidOptionError(`Expected \`timeout\` to be at most ${MAX_TIMER_MS} ms, got ${describe(timeout)}`);
    const signal = options.signal;
    if (this.count >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const started = this.deliveredCount;
      const waiter: Waiter = {
        n,
        resolve: () => {
          realClearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const drop = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
      };
      const onAbort = (): void => {
        realClearTimeout(timer);
        drop();
        reject(signal!.reason);
      };
      const timer = realSetTimeout(() => {
        drop();
        signal?.removeEventListener("abort", onAbort);
        reject(
          new WaitForTimeoutError(
            `MemorySink "${this.name}": expected at least ${n} records within ${timeout} ms, got ${this.count} ` +
              `(${this.deliveredCount - started} arrived while waiting; sends: ${this.sendCount}, failed sends: ` +
              `${this.failedSendCount}, aborted sends: ${this.abortedSendCount}, rejected: ${this.rejectedCount}, ` +
              `retry: ${this.retriedCount}, in flight: ${this.inFlightCount}${this.lastSendErrorText()}${fakeTimersHint()})`,
            this.count,
            undefined,
          ),
        );
      }, timeout);
      if (signal !== undefined) {
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  // ── fault injection ─────────────────────────────────────────────────────────────────────────────

  /** The next `n` sends (counted when a send begins) fail as a whole-batch retry. Replaces an earlier `failNext`. */
  failNext(n: number, options: FailNextOptions = {}): this {
    checkInt("n", n, 0);
    checkObject("options", options);
    checkNumber("retryAfterMs", options.retryAfterMs, 0);
    checkReason("reason", options.reason);
    this.failures = n;
    this.failOptions = { ...options };
    return this;
  }

  /** Reject matching records (the engine dead-letters or drops them) with `reason`. */
  rejectWhen(predicate: RecordPredicate, reason = "rejected_by_test", options: RuleOptions = {}): this {
    return this.addRule("rejected", predicate, reason, options);
  }

  /** Answer "retry" for matching records (the engine resends only them). Use `times` to let a resend pass. */
  retryWhen(predicate: RecordPredicate, reason = "retry_by_test", options: RuleOptions = {}): this {
    return this.addRule("retry", predicate, reason, options);
  }

  /** Every send from now on waits `ms` before answering (abortable). */
  setLatency(ms: number): this {
    checkNumber("ms", ms, 0);
    this.latency = ms;
    return this;
  }

  /**
   * Hold every send not yet answered (new ones, waiting ones, ones in their latency wait) until `unblock()`,
   * or until its signal aborts.
   */
  block(): this {
    if (this.gate === undefined) {
      let release!: () => void;
      const promise = new Promise<void>((resolve) => (release = resolve));
      this.gate = { promise, release };
    }
    return this;
  }

  /** Let the sends held by `block()` go on. */
  unblock(): this {
    const gate = this.gate;
    this.gate = undefined;
    gate?.release();
    return this;
  }

  /** Sends that begin while this is on never answer; only their signal ends them. */
  neverAnswer(on = true): this {
    this.hang = on;
    return this;
  }

  /**
   * Remove every fault for the sends to come: failures, rules, latency, hang; and `unblock()`. Held records stay. A
   * send already hung by `neverAnswer()` stays hung until its signal aborts (the sink's `sendTimeoutMs`, or a stop).
   */
  clearFaults(): this {
    this.failures = 0;
    this.failOptions = {};
    this.rules = [];
    this.latency = 0;
    this.hang = false;
    this.lastSendError = undefined;
    return this.unblock();
  }

  // ── counters ────────────────────────────────────────────────────────────────────────────────────

  /** Calls of `send`. */
  get sends(): number {
    return this.sendCount;
  }
  /** Records delivered since construction (not reset by `clear()`). */
  get delivered(): number {
    return this.deliveredCount;
  }
  /** Sends failed by `failNext`, or by a `rejectWhen`/`retryWhen` predicate that threw. */
  get failedSends(): number {
    return this.failedSendCount;
  }
  /** Sends ended by their signal. */
  get abortedSends(): number {
    return this.abortedSendCount;
  }
  /** Records answered "rejected". */
  get rejected(): number {
    return this.rejectedCount;
  }
  /** Records answered "retry" by a `retryWhen` rule. */
  get retried(): number {
    return this.retriedCount;
  }
  /** Sends that have begun and not yet answered. */
  get inFlight(): number {
    return this.inFlightCount;
  }
  /** Calls of `open()`. */
  get opens(): number {
    return this.openCount;
  }
  /** Times the sink went from open to closed (repeated `close()` calls count once). */
  get closes(): number {
    return this.closeCount;
  }
  get closed(): boolean {
    return this.isClosed;
  }

  metrics(): SinkMetrics {
    return {
      sends: this.sendCount,
      records: this.deliveredCount,
      bytes: this.deliveredBytes,
      failed_sends: this.failedSendCount,
      aborted_sends: this.abortedSendCount,
      rejected_records: this.rejectedCount,
      retry_records: this.retriedCount,
      in_flight: this.inFlightCount,
      held_records: this.count,
    };
  }

  // ── Sink ────────────────────────────────────────────────────────────────────────────────────────

  open(): void {
    this.openCount++;
    this.isClosed = false;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeCount++;
  }

  async send(batch: Batch, ctx?: SendContext): Promise<SendResult> {
    this.sendCount++;
    const signal = ctx?.signal;
    // Decided when the send begins, so concurrent sends fail in call order.
    const fail = this.failures > 0;
    if (fail) this.failures--;
    const failOptions = this.failOptions;
    this.inFlightCount++;
    try {
      checkAborted(this.name, signal);
      // A send that begins blocked starts its latency at unblock().
      if (this.gate !== undefined) await this.whileBlocked(signal);
      if (this.latency > 0) await sleep(this.name, this.latency, signal);
      if (this.hang) await untilSettledOrAborted(this.name, new Promise<never>(() => {}), signal);
      // block() holds every send not yet answered, so also one that was in its latency wait when it came.
      if (this.gate !== undefined) await this.whileBlocked(signal);
      checkAborted(this.name, signal);
    } catch (error) {
      this.abortedSendCount++;
      // An aborted send never answered, so it did not use up an injected failure.
      if (fail) this.failures++;
      throw error;
    } finally {
      this.inFlightCount--;
    }
    if (fail) {
      this.failedSendCount++;
      const reason = failOptions.reason ?? "injected_failure";
      if (failOptions.throw === true) {
        const error = new SinkError("ERR_SINK_SEND", `MemorySink "${this.name}": injected failure (${reason})`, {
          sink: this.name,
        });
        if (failOptions.retryAfterMs !== undefined) error.retryAfterMs = failOptions.retryAfterMs;
        throw error;
      }
      return Outcome.retry(reason, failOptions.retryAfterMs);
    }
    if (this.rules.length === 0) return this.deliverAll(batch);
    try {
      return this.judge(batch);
    } catch (error) {
      // A rule's predicate threw (a test's bug, or a record it did not expect): a failed send, said in waitForCount's
      // timeout message too, not only on `sink:error`.
      this.failedSendCount++;
      this.lastSendError = error;
      throw error;
    }
  }

  private lastSendErrorText(): string {
    const e = this.lastSendError;
    if (e === undefined) return "";
    return `; last failed send: a rule's predicate threw ${e instanceof Error ? `${e.name}: ${e.message}` : describe(e)}`;
  }

  /** Waits until unblocked; a `block()` that comes again before this send resumes holds it again. */
  private async whileBlocked(signal: AbortSignal | undefined): Promise<void> {
    while (this.gate !== undefined) await untilSettledOrAborted(this.name, this.gate.promise, signal);
  }

  private deliverAll(batch: Batch): RecordOutcome {
    if (this.keep === 0) {
      // A counting sink: nothing is held, nor decoded.
      this.deliveredCount += batch.length;
    } else if (batch instanceof EntryBatch) {
      this.undecoded.push(batch);
      this.undecodedCount += batch.length;
      this.deliveredCount += batch.length;
    } else {
      const json = batch.json;
      const lines = this.decoded();
      for (let i = 0; i < json.length; i++) lines.push(json[i]!);
      this.deliveredCount += json.length;
    }
    this.deliveredBytes += batch.bytes;
    this.bound();
    this.wake();
    return Outcome.delivered;
  }

  private judge(batch: Batch): SendResult {
    const json = batch.json;
    const records = batch.records;
    const n = json.length;
    const lines = this.decoded();
    const outcomes = new Array<RecordOutcome>(n);
    const chosen = this.matchAll(records, batch);
    let allDelivered = true;
    for (let i = 0; i < n; i++) {
      const rule = chosen[i];
      if (rule === undefined) {
        outcomes[i] = Outcome.delivered;
        if (this.keep > 0) lines.push(json[i]!);
        this.deliveredCount++;
        this.deliveredBytes += Buffer.byteLength(json[i]!);
        continue;
      }
      allDelivered = false;
      if (rule.status === "rejected") {
        this.rejectedCount++;
        outcomes[i] = Outcome.reject(rule.reason);
      } else {
        this.retriedCount++;
        outcomes[i] = Outcome.retry(rule.reason, rule.retryAfterMs);
      }
    }
    this.bound();
    this.wake();
    return allDelivered ? Outcome.delivered : Outcome.perRecord(outcomes);
  }

  /**
   * The rule each record of the batch matches (first match wins; a rule with `times` is used up after that many).
   * All or nothing: a predicate that throws leaves no rule used up, and judge() has stored nothing yet, so the
   * engine's resend of the whole batch cannot store a record twice.
   */
  private matchAll(records: readonly LogRecord[], batch: Batch): Array<Rule | undefined> {
    const rules = this.rules;
    const remaining = rules.map((rule) => rule.remaining);
    const chosen = new Array<Rule | undefined>(records.length);
    for (let i = 0; i < records.length; i++) {
      for (let r = 0; r < rules.length; r++) {
        if (remaining[r] === 0 || !rules[r]!.when(records[i]!, i, batch)) continue;
        remaining[r]!--;
        chosen[i] = rules[r];
        break;
      }
    }
    for (let r = 0; r < rules.length; r++) rules[r]!.remaining = remaining[r]!;
    this.rules = rules.filter((rule) => rule.remaining !== 0);
    return chosen;
  }

  private addRule(status: Rule["status"], when: RecordPredicate, reason: string, options: RuleOptions): this {
    checkPredicate("predicate", when, false);
    checkReason("reason", reason);
    checkObject("options", options);
    checkInt("times", options.times, 1, true);
    checkNumber("retryAfterMs", options.retryAfterMs, 0);
    this.rules.push({ status, when, reason, retryAfterMs: options.retryAfterMs, remaining: options.times ?? Infinity });
    return this;
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const held = this.count;
    const ready = this.waiters.filter((w) => held >= w.n);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => held < w.n);
    for (const w of ready) w.resolve();
  }
}

function checkPredicate(path: string, value: unknown, optional: boolean): void {
  if (optional && value === undefined) return;
  if (typeof value !== "function") {
    throw new InvalidOptionError(`Expected \`${path}\` to be a function, got ${describe(value)}`);
  }
}

function checkReason(path: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidOptionError(`Expected \`${path}\` to be a non-empty string, got ${describe(value)}`);
  }
}
