// Aggregator: the public façade. Owns the sources (collector children), the router and one lane per sink,
// and turns their outcomes into typed events, metrics and the DeliveryReport that stop() resolves to.
import { EventEmitter } from "eventemitter3";
import { hostname } from "node:os";
import { setImmediate as nextTurn } from "node:timers/promises";
import {
  AggregatorError,
  CollectorError,
  DiskQueueError,
  DuplicateNameError,
  InvalidOptionError,
  ListenerError,
  RecordError,
  SinkError,
  StateError,
  UnknownSinkError,
} from "./errors.js";
import type { AggregatorEvents, DropReason } from "./events.js";
import {
  type AggregatorOptions,
  type ResolvedAggregatorOptions,
  type SinkOptions,
  type SourceOptions,
  checkName,
  checkObject,
  resolveAggregatorOptions,
  resolveSinkOptions,
  resolveSourceOptions,
} from "./options.js";
import { AckTracker } from "./pipeline/ack-tracker.js";
import { backoffDelay } from "./pipeline/backoff.js";
import { type AckTarget, Entry } from "./pipeline/entry.js";
import { Ring } from "./pipeline/ring.js";
import { Router, type Producer } from "./pipeline/router.js";
import { describe, serializeRecord } from "./pipeline/serialize.js";
import { type PipelineHooks, SinkPipeline } from "./pipeline/sink-pipeline.js";
import type { LogRecord, LogRecordInput } from "./record.js";
import {
  COLLECTOR_DROP_KEYS,
  type DeliveryReport,
  type DropCounts,
  type MetricsSnapshot,
  type SinkCounters,
  type SourceCounters,
  type SourceMetricsSnapshot,
  toPrometheus,
} from "./report.js";
import { sleep } from "./sinks/abort.js";
import type { Sink } from "./sinks/sink.js";
import type { SourceDefinition, SourceHost, SourceRuntime } from "./sources/runtime.js";
import { redact } from "./util/redact.js";
import { Latch } from "./util/latch.js";
import { MAX_TIMER_MS, checkKeys, optionKeys } from "./util/validate.js";
import { errorText } from "./util/text.js";
import { isThenable } from "./util/thenable.js";

export type AggregatorState = "idle" | "starting" | "running" | "stopping" | "stopped";

export interface StopOptions {
  /** Hard deadline for the whole stop: collectors, drain, checkpoints, sink close. @default 10_000 */
  timeoutMs?: number;
}

export interface WriteOptions {
  /**
   * Source name the records are reported under. Each distinct name is a source of its own, with counters and
   * acknowledgement state kept until `removeSource(name)` (about 1.6 KB): use a few names, and put tenants, requests
   * and the like in a field of the record instead. A name as for sources: 1–128 letters, digits, `_`, `.`, `:` or
   * `-`; anything else rejects the write with `ERR_INVALID_OPTION`. @default "host"
   */
  source?: string;
  /**
   * The only sinks this source's records go to, as `addSource(source, { sinks })` has it: named by the first write of
   * the source name, and kept for it (a later write may leave it out; naming other sinks rejects with
   * `ERR_INVALID_OPTION`). The sinks must exist (`ERR_UNKNOWN_SINK`). @default every sink but dead-letter-only ones
   */
  sinks?: readonly string[];
}

interface SourceSlot {
  def: SourceDefinition;
  /** The only sinks its records go to (`SourceOptions.sinks`); undefined for every sink. */
  sinks: readonly string[] | undefined;
  runtime: SourceRuntime | undefined;
  /** The collector's start, once asked for. */
  started: Promise<void> | undefined;
}

interface SinkSlot {
  pipeline: SinkPipeline;
  opened: Promise<void> | undefined;
  /** Aborts a pending open() when stop() comes first. */
  openAbort: AbortController | undefined;
  /** Ends the wait between open() attempts of a sink added while running, when it is removed. */
  openBackoff?: AbortController | undefined;
  /** Its close(), once asked for (by removeSink(), stop() or both). */
  closing: { done: Promise<void>; controller: AbortController; sealed: boolean } | undefined;
}

/**
 * In-process producer behind `write()`: parks records while `block` queues are full, up to the `credit` window (a
 * collector's bound on what it may send ahead of admission): a logger that does not await write() cannot grow it
 * without limit while the sinks are stalled.
 */
class HostProducer implements Producer {
  readonly inbox = new Ring<Entry>(64);
  /** Bytes of the entries in `inbox`. */
  waitingBytes = 0;
  /** The sinks its first write named (WriteOptions.sinks), or undefined for every sink. */
  sinks: readonly string[] | undefined;
  admittedTotal = 0;
  /** Records accepted by write() (serializable ones): what this producer emitted. */
  enqueuedTotal = 0;
  private waiters: Array<{ upTo: number; resolve: () => void; reject: (e: Error) => void }> = [];
  readonly acks: AckTracker;
  private seq = 0;

  constructor(readonly name: string) {
    this.acks = new AckTracker(name);
  }

  nextSeq(): number {
    return this.seq++;
  }

  onAdmitted(count: number, bytes: number): void {
    this.admittedTotal += count;
    this.waitingBytes -= bytes;
    // A source name is kept for the aggregator's life: after a burst, it need not keep the burst's slots.
    this.inbox.shrinkIfEmpty();
    while (this.waiters.length > 0 && this.waiters[0]!.upTo <= this.admittedTotal) this.waiters.shift()!.resolve();
  }

  wait(upTo: number): Promise<void> {
    if (upTo <= this.admittedTotal) return Promise.resolve();
    const admitted = new Promise<void>((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
    // Loggers call write() without awaiting it: stop() rejecting a wait nobody holds must not end the host process
    // (an unhandled rejection). Those records stay visible as the source's `waiting` in the report.
    admitted.catch(() => undefined);
    return admitted;
  }

  failWaiters(error: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(error);
  }
}

const RESOLVED = Promise.resolve();

/** The source a write() names ("host" when it names none), or undefined when that is not a valid name. */
function writeSourceName(options: WriteOptions | undefined): string | undefined {
  const source = options !== null && typeof options === "object" ? (options.source ?? "host") : "host";
  try {
    checkName("options.source", source);
    return source;
  } catch {
    return undefined;
  }
}

/**
 * Counters of removed sources or sinks, by name (summed when a name was removed more than once). A removed one's
 * counters still move for a while (its removal is under way; acks, aborted sends and dead letters come back), so it
 * is read as it is whenever asked, until `final()` says they no longer change: then it is folded into the sums and
 * let go.
 */
class Retired<T extends object> {
  private readonly sums = new Map<string, T>();
  private live: Array<{ name: string; read: () => T; final: () => boolean }> = [];

  add(name: string, read: () => T, final: () => boolean): void {
    this.fold();
    this.live.push({ name, read, final });
  }

  /** Every removed one's counters now, by name. */
  read(): Map<string, T> {
    this.fold();
    const out = new Map(this.sums);
    for (const r of this.live) sumInto(out, r.name, r.read());
    return out;
  }

  private fold(): void {
    this.live = this.live.filter((r) => {
      if (!r.final()) return true;
      sumInto(this.sums, r.name, r.read());
      return false;
    });
  }
}

function sumInto<T extends object>(sums: Map<string, T>, name: string, counters: T): void {
  const earlier = sums.get(name);
  sums.set(name, earlier === undefined ? counters : addCounters(earlier, counters));
}

/** Which Aggregator each sink instance is added to (until it is removed, or that aggregator stopped). */
const attachedSinks = new WeakMap<object, Aggregator>();

/** Marks a listener wrapped by the Aggregator with the function the host gave. */
const ORIGINAL = Symbol("child-log-agg.listener");
type Guarded = ((...args: unknown[]) => unknown) & { [ORIGINAL]: (...args: unknown[]) => unknown };

/**
 * Ships logs from supervised collector children (and in-process writes) to sinks, each sink on its own
 * bounded, batching, retrying lane.
 *
 * ```ts
 * const agg = new Aggregator({ queue: { whenFull: "block" } })
 *   .addSource(new CommandSource({ name: "worker", command: "node", args: ["worker.js"], parser: "json" }))
 *   .addSink(new MemorySink({ name: "mem" }));
 * await agg.start();
 * const report = await agg.stop({ timeoutMs: 10_000 });
 * ```
 */
export class Aggregator extends EventEmitter<AggregatorEvents> implements AsyncDisposable {
  private readonly options: ResolvedAggregatorOptions;
  private readonly router = new Router();
  private readonly sinks = new Map<string, SinkSlot>();
  /**
   * Sinks that have been another sink's dead-letter target: they stay dead-letter only after that sink is removed
   * (a dead-letter file must not start taking every record), until they are removed themselves.
   */
  private readonly deadLetterOnly = new Set<string>();
  private readonly sources = new Map<string, SourceSlot>();
  private readonly writers = new Map<string, HostProducer>();
  private readonly preRoutingDrops: DropCounts = {};
  private readonly hooks: PipelineHooks;
  private _state: AggregatorState = "idle";
  private startedAt: number | undefined;
  private stopping: Promise<DeliveryReport> | undefined;
  /** Fires when a stop() has finished (ends the waits of removeSource()/removeSink() and of start()). */
  private readonly stopped = new Latch();
  private readonly host: SourceHost;

  constructor(options?: AggregatorOptions) {
    super();
    this.options = resolveAggregatorOptions(options);
    this.router.onFilterError = (p, error) => {
      p.filterErrors++;
      const now = Date.now();
      if (now - p.filterErrorAnnouncedAt < 1_000) return;
      p.filterErrorAnnouncedAt = now;
      const err = new SinkError(
        "ERR_SINK_FILTER",
        `the filter of sink "${p.name}" threw (${p.filterErrors} record(s) so far, left out of this sink): ${errorMessage(error)}`,
        { sink: p.name, cause: error },
      );
      this.emit("sink:error", { sink: p.name, error: err });
    };
    this.router.onUnrouted = (entry) => {
      entry.pending = 1;
      entry.settleOne();
    };
    this.hooks = this.makeHooks();
    this.host = {
      router: this.router,
      checkpointDir: this.options.checkpointDir,
      hostName: this.options.hostName ?? hostname(),
      credit: this.options.credit,
      emit: (event, ...args) => {
        (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
      },
      dropUnserializable: (source, count, detail) => this.countPreRoutingDrop("unserializable", count, detail, source),
      dropInCollector: (source, count, key) =>
        this.countPreRoutingDrop("collector", count, `collector of "${source}" dropped ${count} record(s): ${key} (${COLLECTOR_DROP_KEYS[key] ?? key})`, source),
    };
  }

  get state(): AggregatorState {
    return this._state;
  }

  /**
   * Listeners are the host's code, called from inside the engine: one that throws must not leave a lane half-way
   * through settling a batch. The throw is reported as an `error` event (ERR_LISTENER) instead; a throwing `error`
   * listener is ignored. eventemitter3 skips the event's remaining listeners after a throw, as Node's does.
   */
  override emit<T extends EventEmitter.EventNames<AggregatorEvents>>(event: T, ...args: EventEmitter.EventArgs<AggregatorEvents, T>): boolean {
    try {
      return super.emit(event, ...args);
    } catch (error) {
      if (event !== "error") {
        try {
          super.emit("error", new ListenerError(`a "${String(event)}" listener threw: ${errorMessage(error)}`, { cause: error }));
        } catch {
          // An `error` listener that throws has nowhere left to report to.
        }
      }
      return true;
    }
  }

  /**
   * Listeners are wrapped so that an async one that rejects (`agg.on("drop", async (e) => { await alert(e); })`) is
   * reported like one that throws, as an `error` event (ERR_LISTENER), instead of an unhandled rejection that ends
   * the host. `off()`/`removeListener()` take the function as given, and `listeners()` returns it.
   */
  override on<T extends EventEmitter.EventNames<AggregatorEvents>>(event: T, fn: EventEmitter.EventListener<AggregatorEvents, T>, context?: unknown): this {
    return super.on(event, this.guarded(event, fn), context);
  }

  override addListener<T extends EventEmitter.EventNames<AggregatorEvents>>(event: T, fn: EventEmitter.EventListener<AggregatorEvents, T>, context?: unknown): this {
    return this.on(event, fn, context);
  }

  override once<T extends EventEmitter.EventNames<AggregatorEvents>>(event: T, fn: EventEmitter.EventListener<AggregatorEvents, T>, context?: unknown): this {
    return super.once(event, this.guarded(event, fn), context);
  }

  override removeListener<T extends EventEmitter.EventNames<AggregatorEvents>>(
    event: T,
    fn?: EventEmitter.EventListener<AggregatorEvents, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    if (fn !== undefined) for (const g of super.listeners(event)) if ((g as Partial<Guarded>)[ORIGINAL] === fn) super.removeListener(event, g, context, once);
    return super.removeListener(event, fn, context, once);
  }

  override off<T extends EventEmitter.EventNames<AggregatorEvents>>(
    event: T,
    fn?: EventEmitter.EventListener<AggregatorEvents, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    return this.removeListener(event, fn, context, once);
  }

  override listeners<T extends EventEmitter.EventNames<AggregatorEvents>>(event: T): Array<EventEmitter.EventListener<AggregatorEvents, T>> {
    return super.listeners(event).map((g) => (g as Partial<Guarded>)[ORIGINAL] ?? g) as Array<EventEmitter.EventListener<AggregatorEvents, T>>;
  }

  private guarded<T extends EventEmitter.EventNames<AggregatorEvents>>(event: T, fn: EventEmitter.EventListener<AggregatorEvents, T>): EventEmitter.EventListener<AggregatorEvents, T> {
    // Not a function: eventemitter3 throws its own TypeError for it.
    if (typeof fn !== "function") return fn;
    const original = fn as unknown as (...args: unknown[]) => unknown;
    const report = (error: unknown): void => {
      if (event === "error") return; // an `error` listener's failure has nowhere left to go
      try {
        super.emit("error", new ListenerError(`a "${String(event)}" listener rejected: ${errorMessage(error)}`, { cause: error }));
      } catch {
        // An `error` listener that throws has nowhere left to report to.
      }
    };
    const g = function (this: unknown, ...args: unknown[]): unknown {
      const result = original.apply(this, args);
      if (isThenable(result)) result.then(undefined, report);
      return result;
    } as Guarded;
    g[ORIGINAL] = original;
    return g as unknown as EventEmitter.EventListener<AggregatorEvents, T>;
  }

  /**
   * Add a source (a collector that runs in its own child process). Chainable; works before and after start().
   * `options.sinks` names the only sinks its records go to; by default they go to every sink.
   */
  addSource(source: SourceDefinition, options?: SourceOptions): this {
    this.assertNotStopped("addSource");
    if (source === null || typeof source !== "object" || typeof source.createRuntime !== "function") {
      throw new InvalidOptionError(
        `Expected a source (FileSource, CommandSource, ScriptSource or NetworkSource), got ${describe(source)}`,
      );
    }
    checkName("source.name", source.name);
    const sinks = resolveSourceOptions(options);
    if (this.sources.has(source.name) || this.writers.has(source.name)) {
      throw new DuplicateNameError(`A source named "${source.name}" already exists`, { source: source.name });
    }
    const live = this._state === "running" || this._state === "starting";
    // Before start(), sinks may still be added; start() checks the names then.
    if (live && sinks !== undefined) this.checkSourceSinks(source.name, sinks);
    const slot: SourceSlot = { def: source, sinks, runtime: undefined, started: undefined };
    this.sources.set(source.name, slot);
    if (live) {
      // Running: a source that cannot start is that source's problem, reported as an event; the rest goes on. It starts
      // in a turn of its own (see inSpawnTurn): a loop of addSource() calls spawned all their collectors in one.
      const start = () => (this.sources.get(source.name) === slot && this.stopping === undefined ? this.startSource(slot) : undefined);
      void this.inSpawnTurn(start).catch((error: unknown) => {
        // Removed, or stopped, before its collector said ready: its start was called off, nothing crashed.
        if (this.sources.get(source.name) !== slot || this.stopping !== undefined) return;
        const err =
          error instanceof AggregatorError
            ? error
            : new CollectorError("ERR_COLLECTOR_CRASHED", `source "${source.name}" failed to start: ${errorMessage(error)}`, { source: source.name, cause: error });
        this.emit("source:error", { source: source.name, error: err });
      });
    }
    return this;
  }

  /**
   * Stop a source: its collector stops reading, what it read is delivered, then it exits. A stop() that comes
   * meanwhile stops it with the others, by the stop's deadline if that comes first; this then resolves before the
   * stop does.
   */
  removeSource(name: string, options: StopOptions = {}): Promise<SourceCounters> {
    return this.removal(this.doRemoveSource(name, options));
  }

  private async doRemoveSource(name: string, options: StopOptions): Promise<SourceCounters> {
    const writer = this.writers.get(name);
    if (writer !== undefined) return this.removeWriter(writer, Date.now() + stopTimeout(options));
    const slot = this.sources.get(name);
    if (slot === undefined) throw new InvalidOptionError(`No source named ${describe(name)}`);
    const deadline = Date.now() + stopTimeout(options);
    this.sources.delete(name);
    const rt = slot.runtime;
    if (rt === undefined) return emptySourceCounters();
    // Until it has exited, stop() stops it too; the report reads its counters when it is built.
    this.removingSources.add(rt);
    this.retiredSources.add(name, () => ({ ...rt.counters(), kind: slot.def.kind }), () => !this.removingSources.has(rt) && allSettled(rt));
    const stopped = this.stopped;
    await stopped.race(rt.stopInput(deadline));
    await waitUntil(() => rt.inbox.length === 0, deadline, () => this.router.pump(), stopped);
    // What it read is delivered (or settled otherwise) before the collector writes its last checkpoint and exits:
    // closed earlier, the checkpoint would stay behind what the sinks still hold, and a re-added source would read
    // it all again.
    await waitUntil(() => {
      const c = rt.counters();
      return c.settled >= c.emitted;
    }, deadline, () => this.router.pump(), stopped);
    await rt.close(deadline);
    // What still waits for queue room at the deadline goes with the source: counted and announced (a stop() that came
    // meanwhile reports it as the source's `waiting` instead).
    if (rt.inbox.length > 0 && this.stopping === undefined) {
      // Dropped, so no longer its `waiting` (counted once, as dropped).
      const left = rt.discardWaiting();
      this.countPreRoutingDrop("sourceRemoved", left, `removeSource() reached its deadline with ${left} record(s) of "${name}" still waiting for queue room`, name);
    }
    this.router.removeProducer(rt);
    this.removingSources.delete(rt);
    return rt.counters();
  }

  /**
   * A `write()` source (a name per tenant, say) is kept until removed: what it holds waiting for queue room is admitted
   * until the deadline, and then dropped (`sourceRemoved`, its writes reject). A later write() with the name starts
   * it afresh. Its counters stay in the report.
   */
  private async removeWriter(w: HostProducer, deadline: number): Promise<SourceCounters> {
    const name = w.name;
    this.writers.delete(name);
    // Until it is let go, a stop() fails its waiting writes as it does those of the writers it has.
    this.removingWriters.add(w);
    this.retiredSources.add(name, () => ({ ...writerCounters(w), kind: "write" }), () => w.inbox.length === 0 && w.acks.watermark >= w.admittedTotal);
    await waitUntil(() => w.inbox.length === 0, deadline, () => this.router.pump(), this.stopped);
    if (w.inbox.length > 0 && this.stopping === undefined) {
      const left = w.inbox.length;
      w.inbox.drain();
      w.waitingBytes = 0;
      this.countPreRoutingDrop("sourceRemoved", left, `removeSource() reached its deadline with ${left} record(s) of "${name}" still waiting for queue room`, name);
      w.failWaiters(new StateError("ERR_INVALID_STATE", `write() source "${name}" was removed before these records were admitted`, { source: name }));
    }
    this.router.removeProducer(w);
    this.removingWriters.delete(w);
    return writerCounters(w);
  }

  /** Add a sink with its own queue, batching, retry policy, dead-letter route and filter. Chainable. */
  addSink(sink: Sink, options?: SinkOptions): this {
    this.assertNotStopped("addSink");
    try {
      return this.doAddSink(sink, options);
    } catch (error) {
      if (error instanceof AggregatorError) throw error;
      // A getter of the sink (`name`, `gauges`, `pipelineDefaults`) or of the options that throws, a revoked Proxy.
      throw new InvalidOptionError(`addSink() could not read the sink or its options: ${errorMessage(error)}`, { cause: error });
    }
  }

  private doAddSink(sink: Sink, options: SinkOptions | undefined): this {
    if (sink === null || typeof sink !== "object" || typeof sink.send !== "function") {
      throw new InvalidOptionError(`Expected a sink (an object with \`name\` and \`send(batch, ctx)\`), got ${describe(sink)}`);
    }
    checkName("sink.name", sink.name);
    if (this.sinks.has(sink.name)) throw new DuplicateNameError(`A sink named "${sink.name}" already exists`, { sink: sink.name });
    if (sink.gauges !== undefined && (!Array.isArray(sink.gauges) || !sink.gauges.every((g) => typeof g === "string"))) {
      throw new InvalidOptionError(`Expected \`sink.gauges\` to be an array of metric keys, got ${describe(sink.gauges)}`, { sink: sink.name });
    }
    const resolved = resolveSinkOptions(options, this.options, {
      batch: sink.pipelineDefaults?.batch,
      concurrency: sink.pipelineDefaults?.concurrency,
    });
    if (resolved.deadLetter === sink.name) {
      throw new InvalidOptionError(`Sink "${sink.name}" cannot be its own dead-letter sink`, { sink: sink.name });
    }
    const live = this._state === "running" || this._state === "starting";
    if (resolved.deadLetter !== undefined && live && !this.sinks.has(resolved.deadLetter)) {
      throw new UnknownSinkError(`Dead-letter sink "${resolved.deadLetter}" of sink "${sink.name}" does not exist`, { sink: sink.name });
    }
    // One aggregator at a time: another one's stop() would close it under this one, which would retry for ever.
    const holder = attachedSinks.get(sink);
    if (holder !== undefined && holder !== this && holder.state !== "idle" && holder.state !== "stopped") {
      throw new StateError("ERR_INVALID_STATE", `sink "${sink.name}" is already added to another Aggregator; give each its own instance`, { sink: sink.name });
    }
    const pipeline = new SinkPipeline(sink, resolved, this.hooks);
    const slot: SinkSlot = { pipeline, opened: undefined, openAbort: undefined, closing: undefined };
    this.sinks.set(sink.name, slot);
    attachedSinks.set(sink, this);
    if (live) {
      try {
        this.checkDeadLetterCycles();
      } catch (error) {
        this.sinks.delete(sink.name);
        void pipeline.closeDiskQueue(); // and let go of its disk queue's directory
        throw error;
      }
    }
    this.rebuildRoutes();
    if (live) void this.openSinkUntilOpen(slot);
    return this;
  }

  /**
   * Stop routing to a sink, drain what it holds (until the deadline; what is left then is dropped as `sinkRemoved`),
   * close it. Resolves with its counters then: records it rejected that are still on their way through its
   * dead-letter sink are `pending` in them (the report has their outcome). A stop() that comes meanwhile also drains,
   * abandons and closes it, by the stop's deadline if that comes first (what is left then stays `pending`, as in any
   * sink); this then resolves before the stop does.
   */
  removeSink(name: string, options: StopOptions = {}): Promise<SinkCounters> {
    return this.removal(this.doRemoveSink(name, options));
  }

  private async doRemoveSink(name: string, options: StopOptions): Promise<SinkCounters> {
    const slot = this.sinks.get(name);
    if (slot === undefined) throw new InvalidOptionError(`No sink named ${describe(name)}`);
    for (const other of this.sinks.values()) {
      if (other.pipeline.deadLetter === name && other !== slot) {
        throw new InvalidOptionError(`Sink "${name}" is the dead-letter sink of "${other.pipeline.name}"; remove that one first`);
      }
    }
    const deadline = Date.now() + stopTimeout(options);
    const p = slot.pipeline;
    this.sinks.delete(name);
    slot.openBackoff?.abort();
    this.deadLetterOnly.delete(name);
    // Until it is closed, stop() drains, abandons and closes it too; the report reads its counters when it is built.
    this.removingSinks.add(slot);
    this.retiredSinks.add(name, () => p.report(), () => !this.removingSinks.has(slot) && p.idle);
    this.rebuildRoutes();
    const stopped = this.stopped;
    if (slot.opened !== undefined) {
      // An open() under way is waited for (a sink closed while it opens would leave behind what its open() sets up),
      // and aborted at the deadline. Only a sink that opened can drain: one that failed to is not retried once
      // removed, so what it holds is dropped (sinkRemoved) at once instead of at the deadline.
      let opened = false;
      const settled = slot.opened.then(
        () => (opened = true),
        () => undefined,
      );
      if (!(await withDeadline(stopped.race(settled), deadline))) slot.openAbort?.abort();
      if (opened && !(await withDeadline(stopped.race(p.drain()), deadline))) await answersInHand();
    }
    // Changes nothing if a stop() that came meanwhile abandoned it first: the first abandon's terms hold.
    p.abandon("sinkRemoved");
    await this.closeSink(slot, deadline);
    await this.closeDiskQueue(p, deadline);
    this.removingSinks.delete(slot);
    if (attachedSinks.get(p.sink) === this) attachedSinks.delete(p.sink);
    this.router.pump();
    return p.report();
  }

  /** Open the sinks, then start every collector; resolves when all said ready. */
  async start(): Promise<void> {
    if (this._state !== "idle") {
      const stopped = this._state === "stopping" || this._state === "stopped";
      throw new StateError(stopped ? "ERR_AGGREGATOR_STOPPED" : "ERR_INVALID_STATE", `start() called while the aggregator is ${this._state}`);
    }
    for (const slot of this.sinks.values()) {
      const dl = slot.pipeline.deadLetter;
      if (dl !== undefined && !this.sinks.has(dl)) {
        throw new UnknownSinkError(`Dead-letter sink "${dl}" of sink "${slot.pipeline.name}" does not exist`, {
          sink: slot.pipeline.name,
        });
      }
    }
    this.checkDeadLetterCycles();
    for (const [name, slot] of this.sources) if (slot.sinks !== undefined) this.checkSourceSinks(name, slot.sinks);
    // Added to two aggregators while both were idle: the first to start has it.
    for (const slot of this.sinks.values()) {
      const holder = attachedSinks.get(slot.pipeline.sink);
      if (holder !== undefined && holder !== this && holder.state !== "idle" && holder.state !== "stopped") {
        const name = slot.pipeline.name;
        throw new StateError("ERR_INVALID_STATE", `sink "${name}" is running in another Aggregator; give each its own instance`, { sink: name });
      }
    }
    for (const slot of this.sinks.values()) attachedSinks.set(slot.pipeline.sink, this);
    this._state = "starting";
    this.startedAt = Date.now();
    this.rebuildRoutes();
    try {
      // Collector processes boot while the sinks open; they are told to start only once every sink is open.
      const preparing = this.prepareCollectors();
      preparing.catch(() => undefined);
      // Sinks and sources added while this runs are opened and started by addSink()/addSource() themselves.
      // A stop() that finishes first (an open() that ignores its abort signal) ends the wait.
      const opens = Promise.all([...this.sinks.values()].map((s) => this.openSink(s)));
      opens.catch(() => undefined);
      await this.stopped.race(opens);
      // Sinks that open at once (a MemorySink) leave collectors still to boot: they go on one per turn, rather than
      // all in one from the starts below.
      await preparing;
      // stop() may have come while the sinks opened: then no collector is started behind its back.
      if (this.stopping === undefined) await Promise.all([...this.sources.values()].map((s) => this.startSource(s)));
    } catch (error) {
      // Leave nothing running behind a failed start.
      const stoppedMeanwhile = this.stopping !== undefined;
      if (!stoppedMeanwhile) this._state = "running";
      await this.stop({ timeoutMs: 5_000 }).catch(() => undefined);
      // A collector killed by that stop() while it started is not a crash to report.
      if (stoppedMeanwhile) throw new StateError("ERR_AGGREGATOR_STOPPED", "stop() was called before start() finished", { cause: error });
      throw error;
    }
    if (this.stopping !== undefined) {
      await this.stopping.catch(() => undefined);
      throw new StateError("ERR_AGGREGATOR_STOPPED", "stop() was called before start() finished");
    }
    this._state = "running";
  }

  private checkSourceSinks(source: string, sinks: readonly string[]): void {
    for (const name of sinks) {
      if (!this.sinks.has(name)) throw new UnknownSinkError(`Sink "${name}" named by source "${source}" does not exist`, { source, sink: name });
    }
  }

  /** A dead-letter route that leads back to where it started would pass a rejected record around for ever. */
  private checkDeadLetterCycles(): void {
    for (const slot of this.sinks.values()) {
      const path = [slot.pipeline.name];
      for (let next = slot.pipeline.deadLetter; next !== undefined; next = this.sinks.get(next)?.pipeline.deadLetter) {
        if (path.includes(next)) {
          throw new InvalidOptionError(`Dead-letter routes form a cycle: ${[...path.slice(path.indexOf(next)), next].join(" → ")}`, {
            sink: slot.pipeline.name,
          });
        }
        path.push(next);
      }
    }
  }

  /**
   * Write records from the host process itself. Resolves once every record is admitted to the queues
   * (it waits while a `block` queue is full, so await it). Unserializable records are dropped, counted and announced.
   * A write that finds its source's backlog full (the `credit` window waiting for room), or comes once `stop()` has
   * begun, takes none of its records: they are dropped as `writeRefused` and the promise rejects (ERR_BACKLOG_FULL,
   * ERR_AGGREGATOR_STOPPED). No rejection of write() is ever unhandled, awaited or not.
   */
  write(records: LogRecordInput | readonly LogRecordInput[], options: WriteOptions = {}): Promise<void> {
    let list: readonly LogRecordInput[];
    /** The source's name for the refusal's drop event, when the name is one. */
    let named: string | undefined;
    try {
      // Copied: an array (or array Proxy) whose elements cannot be read fails here, refused, not later as a throw.
      list = Array.isArray(records) ? Array.from(records as readonly LogRecordInput[]) : [records as LogRecordInput];
      named = writeSourceName(options);
    } catch (error) {
      // A revoked Proxy, a getter that throws: refused like any bad argument, never thrown at the caller.
      return this.refuseWrite(new InvalidOptionError(`write() could not read its arguments: ${errorMessage(error)}`, { cause: error }), 1, undefined);
    }
    if (this._state === "stopping" || this._state === "stopped") {
      return this.refuseWrite(new StateError("ERR_AGGREGATOR_STOPPED", `write() after stop()`, { source: named }), list.length, named);
    }
    let name = "host";
    let sinks: readonly string[] | undefined;
    try {
      checkObject("options", options);
      name = options.source ?? "host";
      checkKeys("", options, WRITE_KEYS);
      // The name goes into reports, metrics labels and acknowledgements like any source's.
      if (options.source !== undefined) checkName("options.source", options.source);
      if (options.sinks !== undefined) {
        const named = resolveSourceOptions({ sinks: options.sinks })!;
        this.checkSourceSinks(name, named);
        sinks = named;
      }
    } catch (error) {
      return this.refuseWrite(error as Error, list.length, named);
    }
    let w = this.writers.get(name);
    if (w === undefined) {
      if (this.sources.has(name)) {
        return this.refuseWrite(new DuplicateNameError(`"${name}" is a collector source; write() needs another source name`), list.length, name);
      }
      w = new HostProducer(name);
      w.sinks = sinks;
      this.writers.set(name, w);
      this.router.addProducer(w, sinks);
    } else if (sinks !== undefined && !sameNames(w.sinks, sinks)) {
      const had = w.sinks === undefined ? "every sink" : `sinks ${w.sinks.map((s) => `"${s}"`).join(", ")}`;
      return this.refuseWrite(
        new InvalidOptionError(`write() source "${name}" goes to ${had}, as its first write said; this write names ${sinks.map((s) => `"${s}"`).join(", ")}`),
        list.length,
        name,
      );
    }
    // Bounded like a collector: at most one credit window waits for queue room (the write that reaches it is taken
    // whole). A caller that awaits its writes never gets here; a logger that does not is refused instead of growing
    // the host's memory for as long as the sinks are stalled.
    const credit = this.options.credit;
    if (w.inbox.length >= credit.records || w.waitingBytes >= credit.bytes) {
      const error = new StateError(
        "ERR_BACKLOG_FULL",
        `write() source "${name}" already has ${w.inbox.length} records (${w.waitingBytes} bytes) waiting for queue room, ` +
          `its \`credit\` window (${credit.records} records / ${credit.bytes} bytes): ${list.length} record(s) refused`,
        { source: name },
      );
      return this.refuseWrite(error, list.length, name);
    }
    const now = new Date().toISOString();
    const target: AckTarget = w.acks;
    let bad = 0;
    let firstError: Error | undefined;
    for (let i = 0; i < list.length; i++) {
      // host.name only when the user set hostName: by default a write() ships the record as the app wrote it (what a
      // test asserting on a MemorySink expects); collectors stamp every record they read.
      const s = serializeRecord(list[i]!, now, this.options.hostName);
      if (!s.ok) {
        bad++;
        firstError ??= s.error;
        continue;
      }
      // Not the caller's object: it may change after write() returns, and sinks must see what was written.
      const bytes = Buffer.byteLength(s.json);
      w.inbox.push(new Entry(s.json, bytes, target, w.nextSeq()));
      w.waitingBytes += bytes;
      w.enqueuedTotal++;
    }
    if (bad > 0) {
      const detail = firstError?.message ?? "unserializable";
      const error = new RecordError(`${bad} record(s) could not be serialized: ${detail}`, {
        source: name,
        cause: firstError,
      });
      this.countPreRoutingDrop("unserializable", bad, detail, name, error);
    }
    this.router.pump(w);
    return w.enqueuedTotal <= w.admittedTotal ? RESOLVED : w.wait(w.enqueuedTotal);
  }

  /**
   * Stop collectors (they flush what they read), drain every queue, commit final positions, close the sinks.
   * Returns at `timeoutMs`, plus the time to end what still runs then (kill and reap collectors, abort sends and
   * closes: milliseconds); whatever was not delivered by the deadline is `pending` in the report.
   */
  stop(options: StopOptions = {}): Promise<DeliveryReport> {
    if (this.stopping !== undefined) return this.stopping;
    let timeoutMs: number;
    try {
      timeoutMs = stopTimeout(options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    this.stopping = this.doStop(timeoutMs);
    return this.stopping;
  }

  private async doStop(timeoutMs: number): Promise<DeliveryReport> {
    const t0 = Date.now();
    const deadline = t0 + timeoutMs;
    const wasStarted = this._state !== "idle";
    this._state = "stopping";
    // A start() in progress starts no collector from now on (it checks `stopping`); collectors it already started
    // are in `sources` with their runtime, and are stopped below like the others, as are those being removed.
    const runtimes = [...this.sources.values()].map((s) => s.runtime).filter((r): r is SourceRuntime => r !== undefined);
    runtimes.push(...this.removingSources);
    // 1. Collectors stop reading and hand over what they have.
    await Promise.all(runtimes.map((r) => r.stopInput(deadline).catch(() => undefined)));
    // 2. Drain: inboxes into queues, queues into sinks. Records of a source with no sink left to go to (it named
    // only removed ones) are not waited for: no sink can be added any more. They stay in its `waiting`.
    if (wasStarted) {
      const drained = (async () => {
        await waitUntil(() => !this.router.hasRoutableWaiting(), deadline, () => this.router.pump());
        await Promise.all(this.lanes().map((s) => s.pipeline.drain()));
      })();
      if (!(await withDeadline(drained, deadline))) await answersInHand();
    }
    // Judged by what is left, not by which promise won: a deadline of 0 with nothing held is not a timeout. Records
    // left waiting for a sink were not delivered either.
    const timedOut = this.router.waiting > 0 || this.lanes().some((s) => s.pipeline.busy);
    for (const s of this.lanes()) s.pipeline.abandon();
    // 3. Final checkpoints and process exit (positions committed are only what every sink settled).
    await Promise.all(runtimes.map((r) => r.close(deadline).catch(() => undefined)));
    // 4. Close sinks within what is left, each after its open() settled (or was aborted at the deadline): a sink
    // closed while it still opens would leave behind whatever its open() sets up afterwards.
    await Promise.all(
      this.lanes().map(async (s) => {
        try {
          if (s.opened !== undefined && !(await withDeadline(s.opened, deadline))) s.openAbort?.abort();
          await this.closeSink(s, deadline);
          await this.closeDiskQueue(s.pipeline, deadline);
        } catch (error) {
          // One sink's failure must not cost the others their close, nor the stop its report.
          const name = s.pipeline.name;
          this.emit("sink:error", { sink: name, error: new SinkError("ERR_SINK_CLOSE", `sink "${name}" failed to close: ${errorMessage(error)}`, { sink: name, cause: error }) });
        }
      }),
    );
    for (const w of [...this.writers.values(), ...this.removingWriters]) w.failWaiters(new StateError("ERR_AGGREGATOR_STOPPED", "stopped before these records were admitted"));
    this._state = "stopped";
    for (const s of this.lanes()) if (attachedSinks.get(s.pipeline.sink) === this) attachedSinks.delete(s.pipeline.sink);
    this.stopped.fire();
    // Removals under way end with this signal (their waits race it): they resolve, with their counters, before stop().
    await Promise.all(this.removals);
    return this.buildReport(t0, timedOut);
  }

  /** Every sink lane there is: the sinks, and those whose removal is under way. */
  private lanes(): SinkSlot[] {
    return [...this.sinks.values(), ...this.removingSinks];
  }

  /** Track a removeSource()/removeSink(): stop() resolves after it. */
  private removal<T>(work: Promise<T>): Promise<T> {
    const done = work.then(
      () => undefined,
      () => undefined,
    );
    this.removals.add(done);
    void done.then(() => this.removals.delete(done));
    return work;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** A typed snapshot of every counter and gauge. */
  metrics(): MetricsSnapshot {
    const sources: Record<string, SourceMetricsSnapshot> = {};
    for (const [name, slot] of this.sources) {
      sources[name] = slot.runtime?.snapshot() ?? { ...emptySourceCounters(), kind: slot.def.kind, state: "idle", pid: undefined };
    }
    for (const [name, w] of this.writers) {
      sources[name] = { ...writerCounters(w), kind: "write", state: this._state === "running" ? "running" : "idle", pid: process.pid };
    }
    const sinks: MetricsSnapshot["sinks"] = {};
    for (const [name, slot] of this.sinks) sinks[name] = slot.pipeline.snapshot();
    // What is being removed is still at work (stopping, draining, closing) until its removal resolves; one added again
    // under the same name meanwhile is the one shown.
    for (const rt of this.removingSources) sources[rt.name] ??= rt.snapshot();
    for (const slot of this.removingSinks) sinks[slot.pipeline.name] ??= slot.pipeline.snapshot();
    return {
      state: this._state,
      uptimeMs: this.startedAt === undefined ? 0 : Date.now() - this.startedAt,
      sources,
      sinks,
      dropped: { ...this.preRoutingDrops },
    };
  }

  /** Prometheus text exposition of `metrics()`. */
  prometheus(): string {
    // The keys each sink says are levels (Sink.gauges), as metrics() shows its sinks: removed ones until they are gone.
    const gauges = new Map<string, ReadonlySet<string>>();
    for (const slot of [...this.removingSinks, ...this.sinks.values()]) {
      const g = slot.pipeline.sink.gauges;
      if (g !== undefined && g.length > 0) gauges.set(slot.pipeline.name, new Set(g));
    }
    return toPrometheus(this.metrics(), undefined, gauges);
  }

  // ---- internals ----

  private assertNotStopped(call: string): void {
    if (this._state === "stopping" || this._state === "stopped") {
      throw new StateError("ERR_AGGREGATOR_STOPPED", `${call}() called after stop()`);
    }
  }

  private rebuildRoutes(): void {
    for (const s of this.sinks.values()) if (s.pipeline.deadLetter !== undefined) this.deadLetterOnly.add(s.pipeline.deadLetter);
    // A sink that is (or was) some other sink's dead-letter target receives only dead letters, not the fan-out.
    const routes = [...this.sinks.values()].filter((s) => !this.deadLetterOnly.has(s.pipeline.name)).map((s) => s.pipeline);
    // Sources that name their sinks may name any of them, a dead-letter target too.
    const byName = new Map([...this.sinks].map(([name, s]) => [name, s.pipeline]));
    this.router.setRoutes(routes, byName);
  }

  private openSink(slot: SinkSlot): Promise<void> {
    if (slot.opened !== undefined) return slot.opened;
    const p = slot.pipeline;
    const controller = new AbortController();
    slot.openAbort = controller;
    slot.opened = (async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const opening = p.sink.open?.({ signal: controller.signal });
        if (opening !== undefined) {
          // An open() that never settles must not hold start() (or a sink added while running) for ever.
          const ms = p.options.openTimeoutMs;
          const timedOut = new Promise<never>((_resolve, reject) => {
            timer = setTimeout(() => {
              const err = new SinkError("ERR_SINK_OPEN", `sink "${p.name}" did not open within ${ms} ms (openTimeoutMs)`, { sink: p.name });
              controller.abort(err);
              reject(err);
            }, ms);
            // Not unref'd: a host whose only pending work is this open() must not exit with start() unsettled.
          });
          await Promise.race([opening, timedOut]);
        }
      } catch (error) {
        p.markFailed();
        const err =
          error instanceof AggregatorError
            ? error
            : new SinkError("ERR_SINK_OPEN", `sink "${p.name}" failed to open: ${errorMessage(error)}`, { sink: p.name, cause: error });
        this.emit("sink:error", { sink: p.name, error: err });
        throw err;
      } finally {
        clearTimeout(timer);
      }
      p.startSending();
    })();
    return slot.opened;
  }

  /**
   * Open a sink added while running, and if open() fails, try again with its retry policy's backoff until it opens,
   * the sink is removed or the aggregator stops. start() does not retry: a sink that cannot open fails start().
   * Meanwhile its queue fills as if it were down (its `whenFull` applies) and each failure is a `sink:error`.
   */
  private async openSinkUntilOpen(slot: SinkSlot): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.openSink(slot);
        return;
      } catch {
        // Reported by openSink as a sink:error.
      }
      if (this.stopping !== undefined || this.sinks.get(slot.pipeline.name) !== slot) return;
      // The wait keeps the process alive, as the sends of an open sink do; removeSink() and stop() end it.
      const backoff = (slot.openBackoff = new AbortController());
      const off = this.stopped.onFire(() => backoff.abort());
      await sleep(slot.pipeline.name, backoffDelay(attempt, slot.pipeline.options.retry, undefined), backoff.signal).catch(() => undefined);
      off();
      slot.openBackoff = undefined;
      if (this.stopping !== undefined || this.sinks.get(slot.pipeline.name) !== slot) return;
      slot.opened = undefined;
    }
  }

  /**
   * Close a sink once (removeSink() and stop() may both ask), each waiting until its own deadline or the end of a
   * stop(); a close still running at a deadline is aborted.
   */
  private async closeSink(slot: SinkSlot, deadline: number): Promise<void> {
    const p = slot.pipeline;
    let close: unknown;
    try {
      close = p.sink.close;
    } catch {
      close = null; // a `close` getter that throws: startClose() calls it again, and reports what it throws
    }
    if (close === undefined) return;
    const closing = (slot.closing ??= this.startClose(p));
    try {
      await this.awaitClose(p, closing, deadline);
    } finally {
      // Its counters are final now (the report, or the removal's): a `ctx.lost` later changes nothing.
      closing.sealed = true;
    }
  }

  private async awaitClose(p: SinkPipeline, closing: NonNullable<SinkSlot["closing"]>, deadline: number): Promise<void> {
    if (await withDeadline(this.stopped.race(closing.done), deadline)) return;
    // A close started at the deadline (its sink drained, but another held the stop) still gets this turn of the
    // event loop: one that finishes at once (a MemorySink's) is not a failure.
    if (await Promise.race([closing.done.then(() => true), nextTurn(false)])) return;
    if (closing.controller.signal.aborted) return;
    closing.controller.abort();
    // An aborted close that settles soon after still says what it lost (a TCP resend cut short) before the report.
    await withDeadline(closing.done, Date.now() + ABORTED_CLOSE_GRACE_MS);
    // What it held when the deadline came may be lost (a file sink's unflushed tail, a TCP resend window).
    this.emit("sink:error", {
      sink: p.name,
      error: new SinkError("ERR_SINK_CLOSE", `sink "${p.name}" did not close by the deadline: its close() was aborted`, { sink: p.name }),
    });
  }

  /**
   * Close a sink's disk queue. Its last write (at most 8 MiB) is waited for past the deadline: until it landed, the
   * directory stays locked, and another aggregator of this process could not take it over. Bounded, so a disk that
   * hangs cannot hang stop().
   */
  private async closeDiskQueue(p: SinkPipeline, deadline: number): Promise<void> {
    if (await withDeadline(p.closeDiskQueue(), Math.max(deadline, Date.now() + DISK_CLOSE_GRACE_MS))) return;
    this.emit("sink:error", {
      sink: p.name,
      error: new DiskQueueError(`the disk queue of sink "${p.name}" did not finish its last write within ${DISK_CLOSE_GRACE_MS} ms; its directory stays locked until it does`, { sink: p.name }),
    });
  }

  private startClose(p: SinkPipeline): NonNullable<SinkSlot["closing"]> {
    const controller = new AbortController();
    const closing = { done: RESOLVED, controller, sealed: false };
    // Thrown or rejected alike: reported (a close that flushes can lose what it held), and the stop goes on.
    const failed = (error: unknown): void => {
      this.emit("sink:error", {
        sink: p.name,
        error: new SinkError("ERR_SINK_CLOSE", `sink "${p.name}" failed to close: ${errorMessage(error)}`, { sink: p.name, cause: error }),
      });
    };
    let closed: Promise<unknown> = RESOLVED;
    try {
      const lost = (count: number, detail: string): void => {
        if (!closing.sealed) this.noteLostAtClose(p, count, detail);
      };
      closed = Promise.resolve(p.sink.close?.({ signal: controller.signal, lost }));
    } catch (error) {
      failed(error);
    }
    closing.done = closed.then(() => undefined, failed);
    return closing;
  }

  /** A close() that says records it reported delivered were lost after all (`ctx.lost`): counted and announced. */
  private noteLostAtClose(p: SinkPipeline, count: unknown, detail: unknown): void {
    if (typeof count !== "number" || !(count > 0)) return;
    p.lostAtClose(count, typeof detail === "string" ? detail : `sink "${p.name}" lost ${count} record(s) it had reported delivered`);
  }

  /**
   * Boot each source's collector ahead of its start: the first at once, the others one per turn of the event loop
   * (inSpawnTurn). Node's spawn holds the host's thread until the child has become a Node process (5 to 50 ms each on
   * a two-core VM, longer while the earlier ones boot), so spawning them all in one turn froze the host: 214 ms for 8
   * sources, 729 ms for 16.
   */
  private async prepareCollectors(): Promise<void> {
    // stop() may have come, or the source been removed or started, while it waited for its turn.
    const prepare = (slot: SourceSlot) => (): undefined => {
      if (this.stopping === undefined && this.sources.get(slot.def.name) === slot && slot.started === undefined) this.runtimeOf(slot).prepare?.();
      return undefined;
    };
    const [first, ...rest] = [...this.sources.values()];
    if (first !== undefined) prepare(first)();
    await Promise.all(rest.map((slot) => this.inSpawnTurn(prepare(slot))));
  }

  /** The turn the last spawn queued by inSpawnTurn ran in (it never rejects). */
  private spawnChain: Promise<void> = Promise.resolve();

  /**
   * Call `start` in a turn of the event loop of its own, after those queued before it (collectors booted by start(),
   * sources added while running); resolves with what its promise resolves to. Only the call waits for the turn, not
   * the collector's start. Node's spawn holds the host's thread (see prepareCollectors).
   */
  private inSpawnTurn(start: () => Promise<void> | undefined): Promise<void> {
    let started: Promise<void> | undefined;
    const turn = this.spawnChain
      .then(() => nextTurn())
      .then(() => {
        try {
          started = start();
        } catch (error) {
          started = Promise.reject(error);
        }
      });
    this.spawnChain = turn;
    return turn.then(() => started);
  }

  /** Start a source's collector once: start() and an addSource() during start() may both ask. */
  private startSource(slot: SourceSlot): Promise<void> {
    slot.started ??= this.runtimeOf(slot).start();
    return slot.started;
  }

  /** The slot's runtime, made (and given to the router) on first use. */
  private runtimeOf(slot: SourceSlot): SourceRuntime {
    if (slot.runtime === undefined) {
      slot.runtime = slot.def.createRuntime(this.host);
      this.router.addProducer(slot.runtime, slot.sinks);
    }
    return slot.runtime;
  }

  /**
   * A write() that takes nothing: its records are counted and announced as `writeRefused`, and the promise rejects
   * with `error`. Handled here as well: a logger's call that nobody awaits must not become an unhandled rejection,
   * which would end the host process.
   */
  private refuseWrite(error: Error, count: number, source: string | undefined): Promise<void> {
    if (count > 0) this.countPreRoutingDrop("writeRefused", count, error.message, source, error);
    const refused = Promise.reject(error);
    refused.catch(() => undefined);
    return refused;
  }

  private countPreRoutingDrop(reason: DropReason, count: number, detail: string, source?: string, error?: Error): void {
    this.preRoutingDrops[reason] = (this.preRoutingDrops[reason] ?? 0) + count;
    this.emit("drop", { sink: undefined, source, reason, count, detail: redact(detail), error });
  }

  private makeHooks(): PipelineHooks {
    return {
      delivered: (p, count) => {
        if (this.listenerCount("delivered") > 0) this.emit("delivered", { sink: p.name, count });
      },
      dropped: (p, reason, entries, detail, error, count) => {
        const src = entries[0]?.source?.name;
        const uniform = entries.every((e) => e.source?.name === src);
        this.emit("drop", {
          sink: p.name,
          source: uniform ? src : undefined,
          reason,
          count: count ?? entries.length,
          detail: detail === undefined ? undefined : redact(detail),
          error,
        });
      },
      retry: (event) => this.emit("retry", event),
      sinkError: (p, error) => this.emit("sink:error", { sink: p.name, error }),
      // Room again in a queue: the engine's own pump, sliced (see Router.pump).
      capacity: () => this.router.pump(undefined, true),
      deadLetter: (p, entries, reasons, attempts) => this.routeDeadLetters(p, entries, reasons, attempts),
    };
  }

  private routeDeadLetters(p: SinkPipeline, entries: readonly Entry[], reasons: readonly string[], attempts: readonly number[]): boolean {
    const target = p.deadLetter === undefined ? undefined : this.sinks.get(p.deadLetter)?.pipeline;
    if (target === undefined) return false;
    const at = new Date().toISOString();
    for (let i = 0; i < entries.length; i++) {
      const original = entries[i]!;
      // Held until the dead-letter sink has the copy: not by way of its whole frame.
      original.detach();
      const reason = reasons[i] ?? "rejected";
      const record: LogRecord = {
        ...original.record,
        dead_letter: { sink: p.name, reason, attempts: attempts[i], "@timestamp": at },
      };
      const s = serializeRecord(record, at);
      // The original serialized fine, so this can only fail if the reason text itself is odd; keep the original then.
      const json = s.ok ? s.json : original.json;
      // The original waits, held by the sink that rejected it, until the copy is delivered: as its text alone.
      original.releaseDecoded();
      // The DLQ entry's ack settles the original entry in the sink that rejected it: at-least-once across the hop.
      const ack: AckTarget = { name: original.source?.name, settle: (_seq, delivered) => p.settleDeadLetter(original, delivered, reason) };
      // Its text only too (a dead-letter sink that wants objects parses them when it sends).
      const e = new Entry(json, Buffer.byteLength(json), ack, 0);
      e.pending = 1;
      e.admittedAt = Date.now();
      target.accept(e, true);
    }
    this.emit("deadLetter", { sink: p.name, deadLetter: target.name, count: entries.length, reason: reasons[0] ?? "rejected" });
    return true;
  }

  /** write() sources whose removeSource() is under way. */
  private readonly removingWriters = new Set<HostProducer>();
  /** Counters of removed sources and sinks, from the moment their removal began. */
  private readonly retiredSources = new Retired<DeliveryReport["sources"][string]>();
  private readonly retiredSinks = new Retired<SinkCounters>();
  /** Removals under way: stop() stops these too. */
  private readonly removingSources = new Set<SourceRuntime>();
  private readonly removingSinks = new Set<SinkSlot>();
  private readonly removals = new Set<Promise<void>>();

  private buildReport(t0: number, timedOut: boolean): DeliveryReport {
    const sources: DeliveryReport["sources"] = {};
    for (const [name, slot] of this.sources) {
      sources[name] = { ...(slot.runtime?.counters() ?? emptySourceCounters()), kind: slot.def.kind };
    }
    for (const [name, w] of this.writers) sources[name] = { ...writerCounters(w), kind: "write" };
    const sinks: DeliveryReport["sinks"] = {};
    for (const [name, slot] of this.sinks) sinks[name] = slot.pipeline.report();
    // Removed sources and sinks stay in the report (added up with a later one of the same name): what they
    // delivered and dropped happened in this run.
    for (const [name, c] of this.retiredSources.read()) sources[name] = sources[name] === undefined ? c : addCounters(sources[name], c);
    for (const [name, c] of this.retiredSinks.read()) sinks[name] = sinks[name] === undefined ? c : addCounters(sinks[name], c);
    const totals = { received: 0, delivered: 0, deadLettered: 0, dropped: 0, pending: 0 };
    for (const r of Object.values(sinks)) {
      totals.received += r.received;
      totals.delivered += r.delivered;
      totals.deadLettered += r.deadLettered;
      totals.dropped += r.droppedTotal;
      totals.pending += r.pending;
    }
    let preDrops = 0;
    for (const n of Object.values(this.preRoutingDrops)) preDrops += n ?? 0;
    totals.dropped += preDrops;
    const stoppedAt = Date.now();
    return {
      startedAt: this.startedAt === undefined ? undefined : new Date(this.startedAt).toISOString(),
      stoppedAt: new Date(stoppedAt).toISOString(),
      durationMs: stoppedAt - t0,
      timedOut,
      sources,
      sinks,
      dropped: { ...this.preRoutingDrops },
      totals,
    };
  }
}

function writerCounters(w: HostProducer): SourceCounters {
  return {
    ...emptySourceCounters(),
    emitted: w.enqueuedTotal,
    admitted: w.admittedTotal,
    settled: w.acks.watermark,
    waiting: w.inbox.length,
  };
}

/** Every record the source handed to the sinks is settled: its counters no longer change. */
function allSettled(rt: SourceRuntime): boolean {
  const c = rt.counters();
  return c.settled >= c.admitted;
}

export function emptySourceCounters(): SourceCounters {
  return { emitted: 0, admitted: 0, settled: 0, bytesRead: 0, linesRead: 0, parseErrors: 0, restarts: 0, waiting: 0, collector: {} };
}

/** `a + b`, field by field: numbers add up, nested counter maps (drops by reason, collector counters) merge. */
function addCounters<T extends object>(a: T, b: T): T {
  const out = { ...a } as Record<string, unknown>;
  for (const [key, value] of Object.entries(b)) {
    const current = out[key];
    if (typeof value === "number") out[key] = (typeof current === "number" ? current : 0) + value;
    else if (value !== null && typeof value === "object") out[key] = addCounters((current ?? {}) as object, value as object);
  }
  return out as T;
}

/**
 * One turn of the event loop at a drain's deadline, before what is still held is judged and its sends aborted: a send
 * whose answer is already here (a sink that answers at once, a response in the socket) counts as what it says. With
 * `stop({ timeoutMs: 0 })`, a partial batch flushed and answered at once was reported pending and never settled.
 */
function answersInHand(): Promise<unknown> {
  return nextTurn();
}

/** How long past a stop's deadline a disk queue may take to finish its last write and let go of its directory. */
const DISK_CLOSE_GRACE_MS = 10_000;
/** How long a close() aborted at its deadline gets to settle and say what it lost (`ctx.lost`). */
const ABORTED_CLOSE_GRACE_MS = 50;

const STOP_KEYS = optionKeys<StopOptions>()(["timeoutMs"]);
const WRITE_KEYS = optionKeys<WriteOptions>()(["source", "sinks"]);

/** `timeoutMs` of stop(), removeSource() and removeSink(): 0 to the longest delay a Node timer honours. */
function stopTimeout(options: StopOptions): number {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionError(`Expected the options to be an object, got ${describe(options)}`);
  }
  checkKeys("", options, STOP_KEYS);
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (typeof timeoutMs !== "number" || !(timeoutMs >= 0) || timeoutMs > MAX_TIMER_MS) {
    throw new InvalidOptionError(`Expected \`timeoutMs\` to be a number from 0 to ${MAX_TIMER_MS} (about 24.8 days), got ${describe(timeoutMs)}`);
  }
  return timeoutMs;
}

function errorMessage(error: unknown): string {
  return redact(errorText(error));
}

/** Resolve true if `p` settles before the deadline, false otherwise (p keeps running). */
export async function withDeadline(p: Promise<unknown>, deadline: number): Promise<boolean> {
  const ms = deadline - Date.now();
  if (ms <= 0) return false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Poll a condition (calling `kick` each time) until it holds, the deadline passes or `until` fires. */
async function waitUntil(cond: () => boolean, deadline: number, kick: () => void, until?: Latch): Promise<boolean> {
  let ended = false;
  let wake: (() => void) | undefined;
  // One waiter on `until` for the whole wait, not one per poll, and it leaves with the wait.
  const off = until?.onFire(() => {
    ended = true;
    wake?.();
  });
  try {
    for (;;) {
      kick();
      if (cond()) return true;
      if (ended || Date.now() >= deadline) return false;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(20, Math.max(1, deadline - Date.now())));
      });
    }
  } finally {
    off?.();
  }
}

/** The same sink names, in any order. */
function sameNames(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((n) => set.has(n));
}
