// One sink's private lane: bounded queue → batcher → bounded-concurrency sends → per-record outcomes →
// deliver / retry with backoff / dead letter / counted drop. A slow sink only ever fills its own lane.
//
//   accept(entry) ─▶ waiting (WaitQueue) ──batch at maxRecords | maxBytes | maxWaitMs──▶ send (p-queue, concurrency N)
//                      ▲                                                              │
//                      │        retry groups (per-record attempts, due times) ◀── retry outcomes
//                      │                                                              │
//   held/heldBytes ────┴── counts everything above until settled ◀── delivered | dead-lettered | dropped
//
// With `queue.disk`, accept() appends to the DiskQueue instead, which settles each record for its source once on disk;
// refill() reads records back into `waiting` while it has room, and they settle through the disk queue.
import PQueue from "p-queue";
import { AggregatorError, DiskQueueError, SinkError, StateError, errorForCode, isErrorCode } from "../errors.js";
import type { DropReason, RetryEvent } from "../events.js";
import type { ResolvedSinkOptions } from "../options.js";
import type { SinkCounters, SinkMetricsSnapshot } from "../report.js";
import type { SendResult, Sink } from "../sinks/sink.js";
import { redact } from "../util/redact.js";
import { AdaptiveConcurrency } from "./adaptive-concurrency.js";
import { backoffDelay } from "./backoff.js";
import { EntryBatch } from "./batch.js";
import { Entry } from "./entry.js";
import { WaitQueue } from "./wait-queue.js";
import { describe } from "./serialize.js";
import { DiskQueue, type DiskQueueHooks } from "./disk-queue.js";
import { errorText } from "../util/text.js";
import { isThenable } from "../util/thenable.js";
import { microtask } from "../util/real-time.js";

/** What a pipeline tells the aggregator. Kept as one object so the hot path makes no closures. */
export interface PipelineHooks {
  delivered(pipeline: SinkPipeline, count: number): void;
  /** `count`: when not every record dropped is an entry (records of a disk queue that could not be read back). */
  dropped(pipeline: SinkPipeline, reason: DropReason, entries: readonly Entry[], detail: string | undefined, error?: Error, count?: number): void;
  retry(event: RetryEvent): void;
  /** Hand rejected entries to the dead-letter sink. Each original entry is settled by the DLQ later. */
  deadLetter(pipeline: SinkPipeline, entries: readonly Entry[], reasons: readonly string[], attempts: readonly number[]): boolean;
  sinkError(pipeline: SinkPipeline, error: SinkError | AggregatorError): void;
  /** Room was freed: producers waiting on a `block` queue may go on. */
  capacity(): void;
}

interface RetryGroup {
  entries: Entry[];
  attempts: number[];
  dueAt: number;
  /**
   * Retried on their own: the records failed while the destination took others (items of a bulk answer, or a batch
   * that failed again after other sends were delivered). Their failures say nothing about the destination, so they
   * hold the sink's other batches back only when the server asks (Retry-After) or in an outage (see retry()).
   */
  isolated: boolean;
  /** The lane's `deliveries` when the group was queued: a delivery since then shows the destination works. */
  deliveries: number;
}

const NO_ATTEMPTS: readonly number[] = [];
/** One send: the retry group its records come from (undefined for waiting records), and the sink's failure level. */
interface Send {
  readonly group: RetryGroup | undefined;
  /**
   * `wholeFailures` when it was launched. Sends in flight together that fail together count as one failed probe:
   * each raises the level to this plus one, so eight concurrent requests that meet an outage back off as one would.
   */
  readonly level: number;
}
/** For SinkPipeline.retry: what failed was some items of a batch, not a whole send. */
const ITEMS = "items";
/** Records a sparse filtered lane holds before it detaches them from their frames (see SinkPipeline.detaching). */
const DETACH_AFTER = 256;
/** A filtered lane judges its pass rate over the last one or two windows of this many records (passed + filtered). */
const RATE_WINDOW = 4096;
/** Records per `drop` event when a removed sink's backlog is dropped (the part inflated at once). */
const DROP_PART = 10_000;
/** A sink that delivered nothing this long with sends in flight is stalled (see SinkPipeline.stalled). */
const STALL_MS = 1_000;
/** Blocks packed again per turn of the lane's stall timer, and how soon the next turn comes while some were. */
const REPACK_PER_TURN = 16;
const REPACK_AGAIN_MS = 20;
/** Blocks of a backlog packed per turn of that timer once a stall began (see WaitQueue.packSome). */
const PACK_PER_TURN = 16;

export class SinkPipeline {
  /** Counters; `pending` is not kept here but derived from `held` by report() and snapshot(). */
  readonly counters: SinkCounters = {
    received: 0,
    delivered: 0,
    deadLettered: 0,
    dropped: {},
    droppedTotal: 0,
    retried: 0,
    filtered: 0,
    pending: 0,
  };
  sendErrors = 0;
  /** Records admitted and not yet settled (waiting + in flight + awaiting retry). */
  held = 0;
  heldBytes = 0;
  /** False while the sink is not open yet: records queue, nothing is sent. */
  private sending = false;
  private closed = false;
  private flushing = false;
  private failed = false;
  /**
   * Records waiting for a batch. While the sink makes no progress, those past the next two batches' worth
   * (`hotRecords`) are held deflated (`queue.compress`).
   */
  private readonly waiting: WaitQueue;
  private readonly hotRecords: number;
  private readonly hotBytes: number;
  /** When the sink last delivered, or began a send with none in flight: how long it has been stuck. */
  private progressAt = 0;
  /** Records (and their bytes) queued since then. */
  private sinceProgress = 0;
  private sinceProgressBytes = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  private stallAt = 0;
  private waitingBytes = 0;
  private readonly retries: RetryGroup[] = [];
  private readonly sends: PQueue;
  /** With `concurrency: "adaptive"`: the limit on `sends` (which itself allows the maximum). */
  private readonly adaptive: AdaptiveConcurrency | undefined;
  private readonly controllers = new Set<AbortController>();
  private backoffUntil = 0;
  /** Sends that delivered records: a delivery shows the destination works (see RetryGroup.isolated). */
  private deliveries = 0;
  /**
   * Failed probes since the last delivery: sends that failed whole and held the sink back (those in flight together
   * count once, see Send.level). The sink's backoff grows with them, whichever batch each probe was.
   */
  private wholeFailures = 0;
  /**
   * A retried batch failed whole again while nothing was delivered: the next probe is a batch of the records that
   * waited, if one is ready. If those are delivered, the batch that keeps failing is the problem (a record the
   * destination refuses every time), not the destination, and it is retried on its own from then on.
   */
  private probeFresh = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private drainWaiters: Array<() => void> = [];
  /**
   * A lane whose filter passes few records holds a few records of each frame. Once it holds more than DETACH_AFTER
   * (its sink is down or slow), the entries it holds are detached from their frames (see Entry.detach), and new ones
   * as they come, until it is back under half that.
   */
  private readonly filtered: boolean;
  private detaching = false;
  /** The pass rate's window: counters at the current window's start, and what the previous window saw. */
  private windowStart = { received: 0, filtered: 0 };
  private previousWindow = { received: 0, filtered: 0 };
  /** Records that reached this lane after stop() closed it (reported as pending; see accept). */
  private lateArrivals = 0;
  /** Set by abandon(reason): in-flight entries that come back undelivered are dropped with it. */
  private abandonDrop: DropReason | undefined;
  /** With `queue.disk`: every record goes to disk first, and comes back from there in order into `waiting`. */
  private readonly disk: DiskQueue | undefined;
  private refilling = false;

  constructor(
    readonly sink: Sink,
    readonly options: ResolvedSinkOptions,
    private readonly hooks: PipelineHooks,
    private readonly random: () => number = Math.random,
  ) {
    this.sends = new PQueue({ concurrency: options.concurrency });
    this.adaptive = options.adaptive ? new AdaptiveConcurrency(options.concurrency) : undefined;
    this.filtered = options.filter !== undefined;
    // A disk queue's read-ahead is bounded by its reads already, and its records are on disk.
    const compress = options.queue.compress && options.queue.disk === undefined;
    const b = options.batch;
    this.hotRecords = compress ? 2 * b.maxRecords : Number.POSITIVE_INFINITY;
    this.hotBytes = compress ? 2 * b.maxBytes : Number.POSITIVE_INFINITY;
    this.waiting = new WaitQueue(this.hotRecords, this.hotBytes);
    if (options.queue.disk !== undefined) {
      this.disk = new DiskQueue(sink.name, options.queue.disk, this.diskHooks());
      this.disk.open();
    }
  }

  private diskHooks(): DiskQueueHooks {
    return {
      persisted: (entries) => {
        // On disk: taken, as far as their sources are concerned (after a crash the disk queue sends them, not the source).
        for (let i = 0; i < entries.length; i++) entries[i]!.settleOne(true);
        this.hooks.capacity();
      },
      notPersisted: (entries, error) => {
        this.hooks.sinkError(this, error);
        for (let i = 0; i < entries.length; i++) this.enqueue(entries[i]!);
        if (this.idle) this.resolveDrain();
      },
      corrupt: (records, detail, recovered) => {
        if (recovered) this.counters.received += records;
        this.countDrop("diskCorrupt", records);
        this.hooks.dropped(this, "diskCorrupt", [], detail, undefined, records);
        if (this.idle) this.resolveDrain();
      },
      readable: () => this.refill(),
      roomAgain: () => this.hooks.capacity(),
      error: (error) => this.hooks.sinkError(this, error),
    };
  }

  /** Nothing is held in memory or on disk. */
  get idle(): boolean {
    return this.held === 0 && (this.disk === undefined || !this.disk.active);
  }

  /** Records held in memory or on disk (stop() waits for these). */
  get busy(): boolean {
    return !this.idle;
  }

  /**
   * Read records back from disk into memory once it has room for a good part of its bound, so that reads are large.
   * Records read back settle through the disk queue, which deletes a segment once all of its records settled.
   */
  private refill(): void {
    const s = this.disk;
    if (s === undefined || this.refilling || this.closed || !s.readable) return;
    const q = this.options.queue;
    if (this.held > 0 && (this.held * 2 > q.maxRecords || this.heldBytes * 2 > q.maxBytes)) return;
    this.refilling = true;
    s.read(q.maxRecords - this.held, q.maxBytes - this.heldBytes).then(
      ({ entries, recovered }) => {
        this.refilling = false;
        this.counters.received += recovered;
        const stamp = Entry.admitStamp(Date.now());
        for (let i = 0; i < entries.length; i++) {
          const e = entries[i]!;
          e.pending = 1;
          e.admit(stamp);
          this.enqueue(e);
        }
        if (entries.length > 0) this.refill();
        else if (this.idle) this.resolveDrain();
      },
      (error: unknown) => {
        this.refilling = false;
        const e = error instanceof DiskQueueError ? error : new DiskQueueError(`could not read the disk queue ${s.path}: ${(error as Error).message}; trying again in 1 s`, { cause: error });
        this.hooks.sinkError(this, e);
        setTimeout(() => this.refill(), 1000).unref();
      },
    );
  }

  /** Close the disk queue (after abandon): what it holds stays there for the next run with the same directory. */
  async closeDiskQueue(): Promise<void> {
    await this.disk?.close();
  }

  get name(): string {
    return this.sink.name;
  }

  get deadLetter(): string | undefined {
    return this.options.deadLetter;
  }

  get blocks(): boolean {
    return this.options.queue.whenFull === "block";
  }

  /** Room for one more entry of `bytes` without exceeding the bounds (in memory, or on disk with `queue.disk`). */
  hasRoom(bytes: number): boolean {
    const s = this.disk;
    if (s === undefined) return this.memoryRoom(bytes);
    // One that can never fit is dropped as `tooLarge` by accept() (a dead letter goes to memory), so it never blocks.
    return bytes > this.options.queue.maxBytes || !s.fits(bytes) || s.hasRoom(bytes);
  }

  private memoryRoom(bytes: number): boolean {
    const q = this.options.queue;
    if (this.held >= q.maxRecords) return false;
    // An entry larger than the whole byte bound is dropped as `tooLarge` by accept(), so it never blocks.
    return this.heldBytes + bytes <= q.maxBytes || bytes > q.maxBytes;
  }

  /**
   * Take an entry routed to this sink. The caller set `entry.pending` for every target beforehand.
   * With `force` (dead letters), the bound may be exceeded by what one batch rejected.
   */
  accept(entry: Entry, force = false): void {
    const q = this.options.queue;
    if (this.closed) {
      this.counters.received++;
      if (this.abandonDrop !== undefined) {
        this.dropOne(entry, "sinkRemoved", "sink was removed");
        return;
      }
      // Handed over after stop()'s deadline closed this lane: not delivered, and not settled either, so its source's
      // position stays before it (a file replays it next run). The report counts it as pending.
      this.lateArrivals++;
      return;
    }
    if (entry.bytes > q.maxBytes) {
      this.counters.received++;
      this.dropOne(entry, "tooLarge", `record of ${entry.bytes} bytes exceeds queue.maxBytes ${q.maxBytes}`);
      return;
    }
    const disk = this.disk;
    if (disk !== undefined) {
      this.counters.received++;
      if (!force && !disk.fits(entry.bytes)) {
        this.dropOne(entry, "tooLarge", `record of ${entry.bytes} bytes does not fit in queue.disk.maxBytes ${this.options.queue.disk!.maxBytes}`);
        return;
      }
      if (disk.hasRoom(entry.bytes)) disk.append(entry);
      else if (force) this.enqueue(entry); // a dead letter: the disk is full or failing, so memory takes it
      else this.dropOne(entry, "queueFull", `disk queue full (${disk.bytes} bytes on disk)`);
      return;
    }
    if (!force && !this.hasRoom(entry.bytes)) {
      this.counters.received++;
      if (q.whenFull === "dropOldest" && this.evictOldestFor(entry.bytes)) {
        // fell through: room made, queue it below (received already counted)
        this.enqueue(entry);
        return;
      }
      // dropNewest, or dropOldest with nothing evictable (everything in flight), or block reached via a race.
      this.dropOne(entry, "queueFull", `queue full (${this.held} records, ${this.heldBytes} bytes held)`);
      return;
    }
    this.counters.received++;
    this.enqueue(entry);
  }

  private enqueue(entry: Entry): void {
    this.held++;
    this.heldBytes += entry.bytes;
    if (this.filtered) {
      this.rollWindow();
      if (!this.detaching && this.held > DETACH_AFTER && this.sparse()) this.startDetaching();
      if (this.detaching) entry.detach();
    }
    this.waiting.push(entry);
    this.waitingBytes += entry.bytes;
    this.sinceProgress++;
    this.sinceProgressBytes += entry.bytes;
    // Behind by more than the hot records: pack once the sink is stalled. More than that many arrived without a
    // delivery tells at once; else look again every STALL_MS.
    if (this.behind() && !this.waiting.packing) {
      if (this.arrivedPastHot() && this.stalled(Date.now())) this.startPacking();
      else this.armStallCheck(STALL_MS);
    }
    if (this.waiting.sharedBlocks > 0) this.armStallCheck(STALL_MS);
    const b = this.options.batch;
    if (this.waiting.length >= b.maxRecords || this.waitingBytes >= b.maxBytes) this.dispatch();
    else if (!this.dispatchQueued) {
      // Coalesce: entries admitted in the same tick join one batch (maxWaitMs 0 means "end of this tick").
      this.dispatchQueued = true;
      microtask(this.queuedDispatch);
    }
  }

  /**
   * The sink makes no progress: not open (or failed), backing off, or with sends in flight no delivery for STALL_MS
   * or for more records than the hot ones. One that delivers as fast as records come, however far behind, is not
   * stalled: packing would take CPU that it, or the host, needs (a sink whose sends run on the host's cores).
   */
  private stalled(now: number): boolean {
    if (!this.sending || now < this.backoffUntil) return true;
    return this.sends.pending > 0 && (this.arrivedPastHot() || now - this.progressAt >= STALL_MS);
  }

  /** Whether records past the hot ones are packed as they arrive (see WaitQueue.setPacking). */
  get packing(): boolean {
    return this.waiting.packing;
  }

  /** More waits than the hot records (or their bytes). */
  private behind(): boolean {
    return this.waiting.length > this.hotRecords || this.waitingBytes > this.hotBytes;
  }

  /** More arrived since the last progress than the hot records (or their bytes). */
  private arrivedPastHot(): boolean {
    return this.sinceProgress > this.hotRecords || this.sinceProgressBytes > this.hotBytes;
  }

  /** Pack from now on; what already waits past the hot records is packed a few blocks per turn of the timer. */
  private startPacking(): void {
    this.waiting.setPacking(true);
    if (this.waiting.backlog) this.armStallCheck(REPACK_AGAIN_MS);
  }

  /** Run checkStall in `ms` (or sooner, if it is due sooner already). */
  private armStallCheck(ms: number): void {
    if (this.closed) return;
    const at = Date.now() + ms;
    if (this.stallTimer !== undefined) {
      if (this.stallAt <= at) return;
      clearTimeout(this.stallTimer);
    }
    this.stallAt = at;
    this.stallTimer = setTimeout(this.checkStall, ms);
    this.stallTimer.unref?.();
  }

  private readonly checkStall = (): void => {
    this.stallTimer = undefined;
    if (this.closed) return;
    const w = this.waiting;
    let next = Number.POSITIVE_INFINITY;
    if (!w.packing && this.behind()) {
      if (this.stalled(Date.now())) w.setPacking(true);
      else next = STALL_MS;
    }
    // What waited past the hot records when packing began: a few blocks a turn (about 0.15 ms each).
    if (w.backlog && w.packSome(PACK_PER_TURN) > 0 && w.backlog) next = Math.min(next, REPACK_AGAIN_MS);
    // Blocks whose shared records the other lanes settled meanwhile: packed again a few at a time (a block takes
    // about 0.2 ms), soon again while there are some.
    if (w.sharedBlocks > 0) next = Math.min(next, w.repackSettled(REPACK_PER_TURN) > 0 ? REPACK_AGAIN_MS : STALL_MS);
    if (next !== Number.POSITIVE_INFINITY) this.armStallCheck(next);
  };

  private dispatchQueued = false;
  private readonly queuedDispatch = (): void => {
    this.dispatchQueued = false;
    this.dispatch();
  };

  /**
   * The filter passed under a quarter of what recently reached this lane: each held record stands for a frame 4× its
   * size. Recent, not lifetime: a lane that passed everything for an hour and now passes 1 % is sparse now.
   */
  private sparse(): boolean {
    const c = this.counters;
    const received = c.received - this.windowStart.received + this.previousWindow.received;
    const filtered = c.filtered - this.windowStart.filtered + this.previousWindow.filtered;
    return received * 4 < received + filtered;
  }

  /** Start a new rate window once the current one saw RATE_WINDOW records (called as records are queued). */
  private rollWindow(): void {
    const c = this.counters;
    const received = c.received - this.windowStart.received;
    const filtered = c.filtered - this.windowStart.filtered;
    if (received + filtered < RATE_WINDOW) return;
    this.previousWindow = { received, filtered };
    this.windowStart = { received: c.received, filtered: c.filtered };
  }

  private startDetaching(): void {
    this.detaching = true;
    this.waiting.forEachLoose((e) => e.detach());
    for (const g of this.retries) for (const e of g.entries) e.detach();
  }

  /** Drop waiting entries, oldest first, until `bytes` more fit. Returns false if that is impossible. */
  private evictOldestFor(bytes: number): boolean {
    const q = this.options.queue;
    const evicted: Entry[] = [];
    while (
      this.waiting.length > 0 &&
      (this.held >= q.maxRecords || this.heldBytes + bytes > q.maxBytes)
    ) {
      const old = this.waiting.shift()!;
      this.waitingBytes -= old.bytes;
      this.held--;
      this.heldBytes -= old.bytes;
      evicted.push(old);
    }
    if (evicted.length > 0) {
      this.countDrop("queueFull", evicted.length);
      for (const e of evicted) e.settleOne();
      for (const e of evicted) this.noteDrop("queueFull", e, "queue full: oldest records dropped (dropOldest)");
    }
    return this.held < q.maxRecords && this.heldBytes + bytes <= q.maxBytes;
  }

  private dropOne(entry: Entry, reason: DropReason, detail: string): void {
    this.countDrop(reason, 1);
    entry.settleOne();
    this.noteDrop(reason, entry, detail);
  }

  /**
   * Admission drops happen one record at a time; announce them once per tick and reason, not once per record
   * (a flood of per-record events is its own outage). Counters are exact either way.
   */
  private noteDrop(reason: DropReason, entry: Entry, detail: string): void {
    const pending = this.dropNotes.get(reason);
    if (pending === undefined) {
      this.dropNotes.set(reason, { entries: [entry], detail });
      if (this.dropNotes.size === 1) microtask(this.flushDropNotes);
    } else {
      pending.entries.push(entry);
    }
  }

  private readonly dropNotes = new Map<DropReason, { entries: Entry[]; detail: string }>();
  private readonly flushDropNotes = (): void => {
    for (const [reason, note] of this.dropNotes) this.hooks.dropped(this, reason, note.entries, note.detail);
    this.dropNotes.clear();
  };

  /**
   * The sink's close() says records it reported delivered were lost after all (`ctx.lost`): they move from
   * `delivered` to `dropped.lostAtClose`, so that received = delivered + deadLettered + dropped + pending still holds.
   */
  lostAtClose(count: number, detail: string): void {
    const n = Math.min(Math.floor(count), this.counters.delivered);
    if (!(n > 0)) return;
    this.counters.delivered -= n;
    this.countDrop("lostAtClose", n);
    this.hooks.dropped(this, "lostAtClose", [], detail, undefined, n);
  }

  private countDrop(reason: DropReason, n: number): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + n;
    this.counters.droppedTotal += n;
  }

  /** Start sending (after the sink opened, perhaps at a later attempt). */
  startSending(): void {
    this.failed = false;
    this.sending = true;
    this.dispatch();
    this.refill();
  }

  /** Send everything without waiting for `maxWaitMs`; resolves when nothing is held. Retries keep their backoff. */
  drain(): Promise<void> {
    this.flushing = true;
    this.dispatch();
    this.refill();
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Give up: abort sends in flight and stop sending. Held entries stay counted as pending;
   * with `dropReason` they are dropped (and settled) instead. Only the first call counts: stop() also abandons a sink
   * whose removeSink() gave up on it already.
   */
  abandon(dropReason?: DropReason): void {
    if (this.closed) return;
    this.closed = true;
    this.sending = false;
    this.clearTimer();
    for (const c of this.controllers) c.abort(new StateError("ERR_INVALID_STATE", `sink "${this.name}" abandoned at its deadline`));
    this.abandonDrop = dropReason;
    if (dropReason === undefined) return;
    const retried: Entry[] = [];
    for (const g of this.retries.splice(0)) retried.push(...g.entries);
    // In-flight entries are settled when their aborted sends return (see finishSend), dead letters when the
    // dead-letter sink settles their copies: `held` counts those too, so there may be nothing to drop here.
    this.waitingBytes = 0;
    // A deflated backlog is inflated a part at a time, not all at once, to be dropped.
    for (;;) {
      const part: Entry[] = [];
      for (let e = this.waiting.shift(); e !== undefined; e = part.length < DROP_PART ? this.waiting.shift() : undefined) part.push(e);
      if (part.length === 0) break;
      this.dropAbandoned(part, dropReason);
    }
    if (retried.length > 0) this.dropAbandoned(retried, dropReason);
  }

  private dropAbandoned(entries: Entry[], reason: DropReason): void {
    this.settleMany(entries);
    this.countDrop(reason, entries.length);
    this.hooks.dropped(this, reason, entries, "sink removed before its queue drained");
  }

  private dispatch(): void {
    if (!this.sending || this.closed) return;
    const batch = this.options.batch;
    // After a send failed whole, and until something is delivered, one send at a time: a single probe per backoff
    // window, not `concurrency` of them, reaches a destination that may be down.
    const slots = this.wholeFailures > 0 ? 1 : (this.adaptive?.limit ?? this.options.concurrency);
    while (this.sends.pending + this.sends.size < slots) {
      const now = Date.now();
      if (now < this.backoffUntil) {
        this.armTimer(this.backoffUntil);
        return;
      }
      if (this.probeFresh && this.batchReady(now)) {
        this.probeFresh = false;
        this.launch(this.takeBatch(), NO_ATTEMPTS, undefined);
        continue;
      }
      const group = this.dueRetryGroup(now);
      if (group !== undefined) {
        this.launch(group.entries, group.attempts, group);
        continue;
      }
      if (this.waiting.length === 0) break;
      if (!this.batchReady(now)) {
        this.armTimer(this.waiting.peek()!.admittedAt + batch.maxWaitMs);
        break;
      }
      this.launch(this.takeBatch(), NO_ATTEMPTS, undefined);
    }
    if (this.adaptive !== undefined && this.sends.pending + this.sends.size >= slots && this.ready(Date.now())) this.adaptive.saturated();
    // Wake up for the next retry group or the next partial batch, whichever comes first.
    let next = Number.POSITIVE_INFINITY;
    for (const g of this.retries) if (g.dueAt < next) next = g.dueAt;
    if (this.waiting.length > 0 && this.sends.pending + this.sends.size < slots) {
      next = Math.min(next, this.waiting.peek()!.admittedAt + batch.maxWaitMs);
    }
    if (next !== Number.POSITIVE_INFINITY) this.armTimer(next);
  }

  /** A batch could be launched now if a slot were free: a retry group is due, or a batch is full or due. */
  private ready(now: number): boolean {
    if (now < this.backoffUntil) return false;
    for (const g of this.retries) if (g.dueAt <= now) return true;
    return this.batchReady(now);
  }

  /** A batch of waiting records may leave now: it is full, due (maxWaitMs), or the lane is flushing. */
  private batchReady(now: number): boolean {
    const n = this.waiting.length;
    if (n === 0) return false;
    const batch = this.options.batch;
    return n >= batch.maxRecords || this.waitingBytes >= batch.maxBytes || this.flushing || now >= this.waiting.peek()!.admittedAt + batch.maxWaitMs;
  }

  private dueRetryGroup(now: number): RetryGroup | undefined {
    let best = -1;
    for (let i = 0; i < this.retries.length; i++) {
      const g = this.retries[i]!;
      if (g.dueAt <= now && (best < 0 || g.dueAt < this.retries[best]!.dueAt)) best = i;
    }
    return best < 0 ? undefined : this.retries.splice(best, 1)[0];
  }

  private takeBatch(): Entry[] {
    const { maxRecords, maxBytes } = this.options.batch;
    const out: Entry[] = [];
    let bytes = 0;
    while (this.waiting.length > 0 && out.length < maxRecords) {
      const e = this.waiting.peek()!;
      if (out.length > 0 && bytes + e.bytes > maxBytes) break;
      this.waiting.shift();
      this.waitingBytes -= e.bytes;
      bytes += e.bytes;
      out.push(e);
    }
    return out;
  }

  private armTimer(at: number): void {
    if (this.timer !== undefined) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, at - Date.now()));
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.dispatch();
  };

  /** Send `entries`; `group` is the retry group they come from, undefined for a batch of waiting records. */
  private launch(entries: Entry[], attempts: readonly number[], group: RetryGroup | undefined): void {
    const send: Send = { group, level: this.wholeFailures };
    let maxAttempt = 0;
    for (const a of attempts) if (a > maxAttempt) maxAttempt = a;
    const batch = new EntryBatch(entries, maxAttempt + 1);
    // The first send of a busy spell: the stall clock (see stalled) starts here, not at the last delivery.
    if (this.sends.pending + this.sends.size === 0) {
      this.progressAt = Date.now();
      this.sinceProgress = this.sinceProgressBytes = 0;
    }
    // Dispatch again once p-queue has released the slot (its add() promise settles after `pending` drops).
    const round = this.adaptive?.started() ?? 0;
    void this.sends.add(() => this.runSend(batch, attempts, round, send)).then(this.queuedDispatch, this.queuedDispatch);
  }

  private async runSend(batch: EntryBatch, attempts: readonly number[], round: number, send: Send): Promise<void> {
    const controller = new AbortController();
    this.controllers.add(controller);
    const timeout = setTimeout(() => {
      const err = new SinkError("ERR_SINK_TIMEOUT", `send to sink "${this.name}" did not settle within ${this.options.sendTimeoutMs} ms`, { sink: this.name });
      controller.abort(err);
    }, this.options.sendTimeoutMs);
    timeout.unref?.();
    let result: SendResult;
    let error: unknown;
    let threw = false;
    try {
      result = await raceAbort(this.sink.send(batch, { signal: controller.signal }), controller.signal);
    } catch (e) {
      threw = true;
      error = e;
    } finally {
      clearTimeout(timeout);
      this.controllers.delete(controller);
    }
    try {
      this.finishSend(batch, attempts, threw, result, error, round, send);
    } catch (bug) {
      // Settling a send must not fail; if it does, say so (its records may stay pending, which stop() reports)
      // rather than let p-queue swallow it, and keep the lane going.
      this.hooks.sinkError(this, new SinkError("ERR_SINK_SEND", `sink "${this.name}": settling a send failed: ${errorText(bug)}`, { sink: this.name, cause: bug }));
      this.afterSend();
    }
  }

  private finishSend(
    batch: EntryBatch,
    attempts: readonly number[],
    threw: boolean,
    result: SendResult,
    error: unknown,
    round: number,
    send: Send,
  ): void {
    const entries = batch.entries;
    const verdict = threw ? undefined : readResult(result, entries.length);
    if (this.closed) {
      this.finishAbandoned(splitDelivered(entries, verdict));
      this.afterSend();
      return;
    }
    /** The destination pushed back (for the adaptive limit): anything retried. Rejections are about the records. */
    let pushedBack = true;
    if (verdict === undefined) {
      const se = toSinkError(error, this.name);
      this.sendErrors++;
      this.hooks.sinkError(this, se);
      // Only a SinkError can say "do not retry" or "retry after"; any other failure is retried with backoff.
      const sinkError = se instanceof SinkError ? se : undefined;
      if (sinkError?.retryable === false) {
        pushedBack = false;
        this.reject(entries, attempts, se.message, "rejected");
      } else this.retry(entries, attempts, se.code === "ERR_SINK_TIMEOUT" ? "sendTimeout" : se.message, sinkError?.retryAfterMs, send);
    } else if (verdict.kind === "delivered") {
      pushedBack = false;
      this.deliver(entries as Entry[]);
    } else if (verdict.kind === "outcomes") {
      pushedBack = this.applyOutcomes(batch, attempts, verdict.outcomes);
    } else if (verdict.kind === "retry") {
      this.sendErrors++;
      this.reportOutcomeError(verdict.error);
      this.retry(entries, attempts, verdict.reason ?? "retry", verdict.retryAfterMs, send);
    } else if (verdict.kind === "rejected") {
      pushedBack = false;
      this.reportOutcomeError(verdict.error);
      this.reject(entries, attempts, verdict.reason ?? "rejected", "rejected");
    } else {
      const se = new SinkError("ERR_SINK_PROTOCOL", `sink "${this.name}" ${verdict.problem}`, { sink: this.name });
      this.sendErrors++;
      this.hooks.sinkError(this, se);
      this.retry(entries, attempts, se.message, undefined, send);
    }
    this.adaptive?.ended(round, pushedBack);
    this.afterSend();
  }

  /**
   * A send that came back after abandon(): no retry, no dead letter. What the sink says it delivered (`delivered`, the
   * whole batch or some of its records) is delivered, so that sources can commit it; the rest is dropped with the
   * abandon's reason, or without one stays held, pending in the report.
   */
  private finishAbandoned({ delivered, rest }: { delivered: readonly Entry[]; rest: readonly Entry[] }): void {
    if (delivered.length > 0) this.deliver(delivered);
    if (rest.length === 0 || this.abandonDrop === undefined) return;
    this.countDrop(this.abandonDrop, rest.length);
    this.settleMany(rest);
    this.hooks.dropped(this, this.abandonDrop, rest, "sink removed before this batch was delivered");
  }

  /** `outcomes` has one entry per record of the batch (readResult checked). Returns whether any is retried. */
  private applyOutcomes(batch: EntryBatch, attempts: readonly number[], outcomes: readonly unknown[]): boolean {
    const entries = batch.entries;
    const delivered: Entry[] = [];
    let retryEntries: Entry[] | undefined;
    let retryAttempts: number[] | undefined;
    let retryAfter: number | undefined;
    let retryReason = "retry";
    let rejEntries: Entry[] | undefined;
    let rejAttempts: number[] | undefined;
    let rejReasons: string[] | undefined;
    let lastReason: string | undefined;
    let lastRedacted = "";
    let firstError: unknown;
    let unknown = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      // A sink's outcome objects may be anything; one that cannot be read is retried like an unknown one.
      let status: unknown;
      let reason: unknown;
      let retryAfterMs: unknown;
      let oError: unknown;
      try {
        const o = outcomes[i] as { status?: unknown; reason?: unknown; retryAfterMs?: unknown; error?: unknown } | null | undefined;
        status = o === undefined || o === null ? "delivered" : o.status;
        if (status === "retry" || status === "rejected") {
          reason = o!.reason;
          retryAfterMs = o!.retryAfterMs;
          oError = o!.error;
        }
      } catch {
        status = undefined;
      }
      if (status === "delivered") {
        delivered.push(e);
      } else if (status === "rejected") {
        firstError ??= oError;
        (rejEntries ??= []).push(e);
        (rejAttempts ??= []).push((attempts[i] ?? 0) + 1);
        const text = typeof reason === "string" || typeof reason === "number" ? String(reason) : "rejected";
        // Redacted once per distinct reason: a batch rejected whole repeats one reason thousands of times.
        if (text !== lastReason) {
          lastReason = text;
          lastRedacted = redact(text);
        }
        (rejReasons ??= []).push(lastRedacted);
      } else {
        // "retry", and what no sink should return: a wrong status is a bug to show, not a reason to drop records.
        if (status === "retry") firstError ??= oError;
        else unknown++;
        (retryEntries ??= []).push(e);
        (retryAttempts ??= []).push(attempts[i] ?? 0);
        if (typeof reason === "string") retryReason = reason;
        if (typeof retryAfterMs === "number") retryAfter = Math.max(retryAfter ?? 0, retryAfterMs);
      }
    }
    if (delivered.length > 0) this.deliver(delivered);
    this.reportOutcomeError(firstError);
    if (unknown > 0) {
      this.sendErrors++;
      this.hooks.sinkError(this, new SinkError("ERR_SINK_PROTOCOL", `sink "${this.name}" returned ${unknown} unknown per-record outcome(s); retrying them`, { sink: this.name }));
    }
    if (rejEntries !== undefined) this.toDeadLetterOrDrop(rejEntries, rejAttempts!, rejReasons!, "rejected");
    if (retryEntries !== undefined) this.retry(retryEntries, retryAttempts!, unknown > 0 && retryReason === "retry" ? "unknownOutcome" : retryReason, retryAfter, ITEMS);
    return retryEntries !== undefined;
  }

  /**
   * A sink may attach a coded error to an outcome (ERR_SINK_AUTH on a 401, ERR_TLS…): surface it once per send as
   * `sink:error`, so a code the README documents is visible even when the sink classified instead of throwing.
   */
  private reportOutcomeError(error: unknown): void {
    if (error !== undefined && error !== null) this.hooks.sinkError(this, toSinkError(error, this.name));
  }

  private deliver(entries: readonly Entry[]): void {
    this.deliveries++;
    if (this.hotRecords !== Number.POSITIVE_INFINITY) {
      this.progressAt = Date.now();
      this.sinceProgress = this.sinceProgressBytes = 0;
      this.waiting.setPacking(false);
    }
    this.wholeFailures = 0;
    this.probeFresh = false;
    this.counters.delivered += entries.length;
    this.settleMany(entries, true);
    this.hooks.delivered(this, entries.length);
  }

  private reject(entries: readonly Entry[], attempts: readonly number[], reason: string, dropReason: DropReason): void {
    const n = entries.length;
    const reasons = new Array<string>(n).fill(redact(reason));
    const att = new Array<number>(n);
    for (let i = 0; i < n; i++) att[i] = (attempts[i] ?? 0) + 1;
    this.toDeadLetterOrDrop(entries, att, reasons, dropReason);
  }

  private toDeadLetterOrDrop(entries: readonly Entry[], attempts: readonly number[], reasons: readonly string[], dropReason: DropReason): void {
    if (this.options.deadLetter !== undefined && this.hooks.deadLetter(this, entries, reasons, attempts)) {
      // The dead-letter sink settles each original entry through its own ack (settleDeadLetter), once it has it
      // for good: counted as dead-lettered only then, so received = delivered + deadLettered + dropped + pending.
      return;
    }
    this.countDrop(dropReason, entries.length);
    this.settleMany(entries);
    this.hooks.dropped(this, dropReason, entries, reasons[0]);
  }

  /**
   * Queue `entries` for another attempt. `failed` says what failed: some items of a batch while the others were
   * delivered or rejected (ITEMS), or a whole send, of waiting records or of a retry group.
   */
  private retry(entries: readonly Entry[], attempts: readonly number[], reason: string, retryAfterMs: number | undefined, failed: Send | typeof ITEMS): void {
    const policy = this.options.retry;
    const again: Entry[] = [];
    const againAttempts: number[] = [];
    let exhausted: Entry[] | undefined;
    let exhaustedAttempts: number[] | undefined;
    let maxAttempt = 0;
    for (let i = 0; i < entries.length; i++) {
      const made = (attempts[i] ?? 0) + 1;
      if (made >= policy.maxAttempts) {
        (exhausted ??= []).push(entries[i]!);
        (exhaustedAttempts ??= []).push(made);
      } else {
        again.push(entries[i]!);
        againAttempts.push(made);
        if (made > maxAttempt) maxAttempt = made;
      }
    }
    if (exhausted !== undefined) {
      const why = redact(`gave up after ${policy.maxAttempts} attempt(s): ${reason}`);
      this.toDeadLetterOrDrop(exhausted, exhaustedAttempts!, new Array<string>(exhausted.length).fill(why), "retriesExhausted");
    }
    if (again.length === 0) return;
    // Records retried on their own: items of a batch whose others went through, or a retried batch that failed again
    // after the destination had taken other records since it was queued.
    const from = failed === ITEMS ? undefined : failed.group;
    const level = failed === ITEMS ? 0 : failed.level;
    const isolated = failed === ITEMS || (from !== undefined && (from.isolated || this.deliveries > from.deliveries));
    // Items retried on their own, or by a lane whose filter passes few, are a few records of each frame.
    if (isolated || (this.filtered && this.sparse())) for (let i = 0; i < again.length; i++) again[i]!.detach();
    // A failure of a whole send says the destination may be unwell: hold new batches back too, so we probe, not
    // hammer. That backoff grows with each such failure until something is delivered, whichever batch failed. Records
    // retried on their own are the exception while the destination looks well: they hold nothing back unless the
    // server asked for a pause (Retry-After) or other sends failed whole since the last delivery (an outage, in which
    // they are probes like any other).
    const asked = retryAfterMs !== undefined && retryAfterMs > 0;
    const holdBack = failed !== ITEMS && (!isolated || asked || this.wholeFailures > 0);
    if (holdBack) this.wholeFailures = Math.max(this.wholeFailures, level + 1);
    const delayMs = backoffDelay(holdBack ? Math.max(maxAttempt, this.wholeFailures) : maxAttempt, policy, retryAfterMs, this.random);
    const dueAt = Date.now() + delayMs;
    this.retries.push({ entries: again, attempts: againAttempts, dueAt, isolated, deliveries: this.deliveries });
    if (holdBack) {
      if (dueAt > this.backoffUntil) this.backoffUntil = dueAt;
      // A retry that failed again: let the records that waited be the next probe (see probeFresh).
      if (from !== undefined) this.probeFresh = true;
    }
    this.counters.retried += again.length;
    this.hooks.retry({ sink: this.name, count: again.length, attempt: maxAttempt, delayMs, reason: redact(reason), wholeBatch: holdBack });
  }

  /** Settle entries this sink held. */
  settleMany(entries: readonly Entry[], delivered = false): void {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      this.held--;
      this.heldBytes -= e.bytes;
      e.settleOne(delivered);
    }
    if (this.detaching && this.held <= DETACH_AFTER >>> 1) this.detaching = false;
  }

  /** The dead-letter sink settled the copy of `entry`: delivered there, or lost there too (`deadLetterFailed`). */
  settleDeadLetter(entry: Entry, delivered: boolean, reason: string): void {
    if (delivered) this.counters.deadLettered++;
    else {
      this.countDrop("deadLetterFailed", 1);
      this.noteDrop("deadLetterFailed", entry, `the dead-letter sink did not take it either: ${reason}`);
    }
    this.held--;
    this.heldBytes -= entry.bytes;
    // For the source, a record parked in the dead-letter sink counts as settled either way: nothing will retry it.
    entry.settleOne(delivered);
    this.refill();
    if (this.idle) this.resolveDrain();
    this.hooks.capacity();
  }

  private afterSend(): void {
    this.refill();
    if (this.idle) this.resolveDrain();
    this.hooks.capacity();
  }

  private resolveDrain(): void {
    if (this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** Records the filter threw on, and when the last `sink:error` about it was announced (at most one a second). */
  filterErrors = 0;
  filterErrorAnnouncedAt = Number.NEGATIVE_INFINITY;

  /** Mark the sink failed (open() threw): records stay queued and are reported pending until an open succeeds. */
  markFailed(): void {
    this.failed = true;
  }

  snapshot(): SinkMetricsSnapshot {
    // A custom sink's metrics are its own: only finite numbers are kept, so that the snapshot stays JSON (a BigInt
    // would make JSON.stringify throw) and prometheus() stays valid.
    const transport: Record<string, number> = {};
    try {
      const m: unknown = this.sink.metrics?.();
      if (m !== null && typeof m === "object") {
        for (const [k, v] of Object.entries(m)) if (typeof v === "number" && Number.isFinite(v) && k !== "__proto__") transport[k] = v;
      }
    } catch {
      // A metrics() that throws has nothing to show.
    }
    const parked = this.waiting.stats;
    const state = this.failed
      ? "failed"
      : this.closed
        ? "closed"
        : !this.sending
          ? "idle"
          : Date.now() < this.backoffUntil
            ? "backoff"
            : "open";
    return {
      ...this.counters,
      dropped: { ...this.counters.dropped },
      pending: this.pendingCount(),
      queueRecords: this.held,
      queueBytes: this.heldBytes,
      queueCompressedRecords: parked.records,
      queueCompressedBytes: parked.bytes,
      queueCompressedTotal: parked.total,
      inFlightBatches: this.sends.pending,
      concurrencyLimit: this.adaptive?.limit ?? this.options.concurrency,
      sendErrors: this.sendErrors,
      filterErrors: this.filterErrors,
      state,
      transport,
      ...(this.disk === undefined
        ? {}
        : {
            disk: {
              records: this.disk.records,
              bytes: this.disk.bytes,
              segments: this.disk.segmentCount,
              written: this.disk.written,
              recovered: this.disk.recovered,
              writeErrors: this.disk.writeErrors,
              corruptRegions: this.disk.corruptRegions,
            },
          }),
    };
  }

  /** Counters for the report; `pending` is what is still held. */
  report(): SinkCounters {
    return { ...this.counters, dropped: { ...this.counters.dropped }, pending: this.pendingCount() };
  }

  /** Held in memory, written to disk by this run and not read back yet, and arrived after the lane closed. */
  private pendingCount(): number {
    return this.held + this.lateArrivals + (this.disk?.records ?? 0);
  }
}

/** A send's result as read once. `problem` says what is wrong with a result no sink should return. */
type Verdict =
  | { readonly kind: "delivered" }
  | { readonly kind: "outcomes"; readonly outcomes: readonly unknown[] }
  | { readonly kind: "retry"; readonly reason: string | undefined; readonly retryAfterMs: number | undefined; readonly error: unknown }
  | { readonly kind: "rejected"; readonly reason: string | undefined; readonly error: unknown }
  | { readonly kind: "protocol"; readonly problem: string };

const DELIVERED_VERDICT: Verdict = { kind: "delivered" };

/**
 * Read what a sink's send() resolved to. Custom sinks may return anything (`true`, a string, an object whose getters
 * throw): this never throws, and a result it cannot read is a protocol problem, retried, not a stranded batch.
 */
function readResult(result: unknown, size: number): Verdict {
  try {
    if (result === undefined || result === null) return DELIVERED_VERDICT;
    if (typeof result !== "object") return { kind: "protocol", problem: `returned ${describe(result)}, which is not an outcome` };
    if ("outcomes" in result) {
      const outcomes: unknown = (result as { outcomes: unknown }).outcomes;
      if (Array.isArray(outcomes) && outcomes.length === size) return { kind: "outcomes", outcomes };
      return { kind: "protocol", problem: `returned ${Array.isArray(outcomes) ? outcomes.length : "no"} outcomes for a batch of ${size}` };
    }
    const r = result as { status?: unknown; reason?: unknown; retryAfterMs?: unknown; error?: unknown };
    const status = r.status;
    if (status === "delivered") return DELIVERED_VERDICT;
    if (status === "retry" || status === "rejected") {
      const reason = typeof r.reason === "string" ? r.reason : undefined;
      if (status === "rejected") return { kind: "rejected", reason, error: r.error };
      return { kind: "retry", reason, retryAfterMs: typeof r.retryAfterMs === "number" ? r.retryAfterMs : undefined, error: r.error };
    }
    return { kind: "protocol", problem: `returned an unknown result (status ${describe(status)})` };
  } catch {
    return { kind: "protocol", problem: "returned a result that could not be read" };
  }
}

/**
 * A send's entries split by its verdict (undefined: it threw): delivered (the whole batch, or by per-record outcome)
 * and the rest. An outcome that cannot be read says nothing about its record.
 */
function splitDelivered(entries: readonly Entry[], verdict: Verdict | undefined): { delivered: readonly Entry[]; rest: readonly Entry[] } {
  if (verdict?.kind === "delivered") return { delivered: entries, rest: [] };
  if (verdict?.kind !== "outcomes") return { delivered: [], rest: entries };
  const delivered: Entry[] = [];
  const rest: Entry[] = [];
  for (let i = 0; i < entries.length; i++) {
    let ok = false;
    try {
      const o = verdict.outcomes[i] as { status?: unknown } | undefined | null;
      ok = o === undefined || o === null || o.status === "delivered";
    } catch {
      ok = false;
    }
    (ok ? delivered : rest).push(entries[i]!);
  }
  return { delivered, rest };
}

/**
 * The error a failed send reports: a SinkError as it is; another of the library's errors again with this sink's
 * name, and of its code's class (the ERR_INVALID_STATE of a closed connection stays a StateError); anything else
 * an ERR_SINK_SEND.
 */
function toSinkError(error: unknown, sink: string): AggregatorError {
  if (error instanceof SinkError) return error;
  if (error instanceof AggregatorError && isErrorCode(error.code)) return errorForCode(error.code, error.message, { sink, cause: error });
  const message = errorText(error);
  return new SinkError("ERR_SINK_SEND", `sink "${sink}" failed to send: ${message}`, { sink, cause: error });
}

/** Settle with the sink's promise, or reject as soon as the signal aborts (a sink that ignores its signal can't hang us). */
function raceAbort<T>(value: PromiseLike<T> | T, signal: AbortSignal): Promise<T> {
  // Any thenable, not only a native Promise: a sink may return another library's promise, and its send must still
  // end at the send timeout or the stop deadline.
  if (!isThenable(value)) return Promise.resolve(value);
  if (signal.aborted) return Promise.reject(signal.reason);
  const promise = Promise.resolve(value);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

