// Public option shapes (loose, documented) and their resolution into the strict internal form, validated once.
import { InvalidOptionError } from "./errors.js";
import { checkInt, checkKeys, checkName, checkNumber, checkObject, optionKeys } from "./util/validate.js";
import type { LogRecord } from "./record.js";
import { describe } from "./pipeline/serialize.js";
import type { ResolvedDiskQueue } from "./pipeline/disk-queue.js";

export { checkInt, checkName, checkNumber, checkObject } from "./util/validate.js";

/** What a sink's queue does when it is full. */
export type WhenFull = "block" | "dropNewest" | "dropOldest";

/** A sink queue on disk (`queue.disk`). */
export interface DiskQueueOptions {
  /** Directory of the disk queues; each sink keeps its own in `dir/<sink name>` (created, mode 0700). Required. */
  dir: string;
  /** Bytes of segment files a sink may hold; when they are full, `whenFull` applies. @default 1_073_741_824 (1 GiB) */
  maxBytes?: number;
  /** A segment file is closed and a new one begun at this size; a segment is deleted once all its records settled. @default 16_777_216 (16 MiB) */
  segmentBytes?: number;
  /** Sync each write to disk (`fdatasync`) before its records count as taken; `false` trades crash safety for speed. @default true */
  fsync?: boolean;
}

export interface QueueOptions {
  /** Records a sink may hold (waiting, in flight and awaiting retry). @default 100_000 */
  maxRecords?: number;
  /** Bytes (serialized JSON) a sink may hold. @default 67_108_864 (64 MiB) */
  maxBytes?: number;
  /**
   * `block` pauses producers (children stop reading through credits) until there is room;
   * `dropNewest` drops the arriving record; `dropOldest` drops the oldest waiting record. Drops are counted.
   * With `disk`, this applies when the disk queue is full (`dropOldest` is not available there).
   * @default "block"
   */
  whenFull?: WhenFull;
  /**
   * Keep this sink's queue on disk: every record is appended to checksummed segment files, acknowledged to its source
   * once synced, and read back in order; `maxRecords` and `maxBytes` then bound what is read ahead into memory. A later
   * run with the same directory sends what an earlier one left.
   */
  disk?: DiskQueueOptions;
  /**
   * While more records wait than the next two batches hold (the sink is down, slow or backing off), hold the later
   * ones deflated in blocks of about 64 KiB, and inflate them as their turn comes. JSON log lines shrink 5 to 10
   * times, so a full queue takes a fraction of `maxBytes` in memory; packing costs about 1 µs of host CPU per
   * 400-byte record that waits that long, and nothing while the sink keeps up. Not used with `disk`.
   * @default true
   */
  compress?: boolean;
}

export interface BatchOptions {
  /** A batch leaves when it holds this many records. @default 5_000 */
  maxRecords?: number;
  /** A batch leaves when its records' JSON reaches this many bytes. @default 5_242_880 (5 MiB) */
  maxBytes?: number;
  /** A batch leaves this long after its first record arrived, full or not. @default 1_000 */
  maxWaitMs?: number;
}

export interface RetryOptions {
  /** First backoff ceiling; each attempt multiplies it by `factor` (full jitter: the delay is random in [0, ceiling]). @default 500 */
  baseDelayMs?: number;
  /** Upper bound of the computed backoff. @default 30_000 */
  maxDelayMs?: number;
  /** Growth factor of the ceiling per attempt. @default 2 */
  factor?: number;
  /** Attempts per record before it is dead-lettered (or dropped). @default Infinity */
  maxAttempts?: number;
  /** A server's Retry-After is honoured up to this many milliseconds. @default 300_000 */
  maxRetryAfterMs?: number;
}

export interface SinkOptions {
  /** Queue bound and overflow policy of this sink. Defaults to the aggregator's `queue`. */
  queue?: QueueOptions;
  /** Batching of this sink. Defaults to the aggregator's `batch` (then the sink's own suggestion). */
  batch?: BatchOptions;
  /** Retry policy of this sink. Defaults to the aggregator's `retry`. */
  retry?: RetryOptions;
  /** Name of another sink that receives records this sink rejected or gave up on. */
  deadLetter?: string;
  /** Only records for which this returns true are sent to this sink (others count as `filtered`). */
  filter?: (record: LogRecord) => boolean;
  /**
   * Batches in flight at once, or `"adaptive"`: from 1, one more after each round of sends that all succeeded while
   * batches waited for a slot, halved when the destination pushes back (429, 503, a retryable failure, a timeout),
   * never above `maxConcurrency`. @default 1 (or the sink's suggestion)
   */
  concurrency?: number | "adaptive";
  /** With `concurrency: "adaptive"`, the most batches in flight at once. @default 8 */
  maxConcurrency?: number;
  /** A send that has not settled after this long is aborted and retried. @default 120_000 */
  sendTimeoutMs?: number;
  /**
   * An `open()` that has not settled after this long is aborted and fails (`ERR_SINK_OPEN`): start() rejects, and a
   * sink added while running is opened again with its retry backoff. @default 60_000
   */
  openTimeoutMs?: number;
}

export interface SourceOptions {
  /**
   * Names of the only sinks this source's records go to (each sink's `filter` still applies). Omit to send them to
   * every sink that is not only a dead-letter target.
   */
  sinks?: readonly string[];
}

export interface AggregatorOptions {
  /** Directory where sources keep their positions (file offsets). Omit for no persistence. */
  checkpointDir?: string;
  /** Default queue options of every sink. */
  queue?: QueueOptions;
  /** Default batch options of every sink. */
  batch?: BatchOptions;
  /** Default retry options of every sink. */
  retry?: RetryOptions;
  /**
   * `host.name` put on collectors' records that lack one, and on `write()`'s when set here (left unset, a write()
   * ships the record as the app wrote it). @default os.hostname() (collectors only)
   */
  hostName?: string;
  /**
   * Records (and bytes) a collector child may have sent but not yet had admitted to the queues; also what a `write()`
   * source may hold waiting for admission (a write that finds it full is refused: `writeRefused`, ERR_BACKLOG_FULL).
   */
  credit?: { records?: number; bytes?: number };
}

export interface ResolvedQueue {
  maxRecords: number;
  maxBytes: number;
  whenFull: WhenFull;
  disk: ResolvedDiskQueue | undefined;
  compress: boolean;
}
export interface ResolvedBatch {
  maxRecords: number;
  maxBytes: number;
  maxWaitMs: number;
}
export interface ResolvedRetry {
  baseDelayMs: number;
  maxDelayMs: number;
  factor: number;
  maxAttempts: number;
  maxRetryAfterMs: number;
}
export interface ResolvedSinkOptions {
  queue: ResolvedQueue;
  batch: ResolvedBatch;
  retry: ResolvedRetry;
  deadLetter: string | undefined;
  filter: ((record: LogRecord) => boolean) | undefined;
  /** Batches in flight at once; with `adaptive`, the most. */
  concurrency: number;
  /** The limit adapts between 1 and `concurrency` (see AdaptiveConcurrency). */
  adaptive: boolean;
  sendTimeoutMs: number;
  openTimeoutMs: number;
}

export const DEFAULT_QUEUE: ResolvedQueue = { maxRecords: 100_000, maxBytes: 64 * 1024 * 1024, whenFull: "block", disk: undefined, compress: true };
export const DEFAULT_BATCH: ResolvedBatch = { maxRecords: 5_000, maxBytes: 5 * 1024 * 1024, maxWaitMs: 1_000 };
export const DEFAULT_RETRY: ResolvedRetry = {
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  maxAttempts: Number.POSITIVE_INFINITY,
  maxRetryAfterMs: 300_000,
};

const WHEN_FULL: readonly WhenFull[] = ["block", "dropNewest", "dropOldest"];

// The names each options object takes: anything else is refused (see checkKeys).
const QUEUE_KEYS = optionKeys<QueueOptions>()(["maxRecords", "maxBytes", "whenFull", "disk", "compress"]);
const DISK_KEYS = optionKeys<DiskQueueOptions>()(["dir", "maxBytes", "segmentBytes", "fsync"]);
const BATCH_KEYS = optionKeys<BatchOptions>()(["maxRecords", "maxBytes", "maxWaitMs"]);
const RETRY_KEYS = optionKeys<RetryOptions>()(["baseDelayMs", "maxDelayMs", "factor", "maxAttempts", "maxRetryAfterMs"]);
const SINK_KEYS = optionKeys<SinkOptions>()([
  "queue", "batch", "retry", "deadLetter", "filter", "concurrency", "maxConcurrency", "sendTimeoutMs", "openTimeoutMs",
]);
const SOURCE_KEYS = optionKeys<SourceOptions>()(["sinks"]);
const AGGREGATOR_KEYS = optionKeys<AggregatorOptions>()(["checkpointDir", "queue", "batch", "retry", "hostName", "credit"]);
const CREDIT_KEYS = optionKeys<NonNullable<AggregatorOptions["credit"]>>()(["records", "bytes"]);

export function resolveQueue(path: string, input: QueueOptions | undefined, base: ResolvedQueue): ResolvedQueue {
  checkObject(path, input);
  checkKeys(path, input, QUEUE_KEYS);
  checkInt(`${path}.maxRecords`, input?.maxRecords, 1);
  checkInt(`${path}.maxBytes`, input?.maxBytes, 1);
  const whenFull = input?.whenFull ?? base.whenFull;
  if (!WHEN_FULL.includes(whenFull)) {
    throw new InvalidOptionError(
      `Expected \`${path}.whenFull\` to be one of "block", "dropNewest", "dropOldest", got ${describe(whenFull)}`,
    );
  }
  const disk = input?.disk === undefined ? base.disk : resolveDisk(`${path}.disk`, input.disk);
  if (disk !== undefined && whenFull === "dropOldest") {
    throw new InvalidOptionError(`\`${path}.whenFull: "dropOldest"\` is not available with \`${path}.disk\` (use "block" or "dropNewest")`);
  }
  if (input?.compress !== undefined && typeof input.compress !== "boolean") {
    throw new InvalidOptionError(`Expected \`${path}.compress\` to be a boolean, got ${describe(input.compress)}`);
  }
  return {
    maxRecords: input?.maxRecords ?? base.maxRecords,
    maxBytes: input?.maxBytes ?? base.maxBytes,
    whenFull,
    disk,
    compress: input?.compress ?? base.compress,
  };
}

function resolveDisk(path: string, input: DiskQueueOptions): ResolvedDiskQueue {
  checkObject(path, input);
  checkKeys(path, input, DISK_KEYS);
  if (typeof input.dir !== "string" || input.dir.length === 0) {
    throw new InvalidOptionError(`Expected \`${path}.dir\` to be a non-empty path string, got ${describe(input.dir)}`);
  }
  checkInt(`${path}.maxBytes`, input.maxBytes, 1024 * 1024);
  checkInt(`${path}.segmentBytes`, input.segmentBytes, 64 * 1024);
  if (input.fsync !== undefined && typeof input.fsync !== "boolean") {
    throw new InvalidOptionError(`Expected \`${path}.fsync\` to be a boolean, got ${describe(input.fsync)}`);
  }
  const out: ResolvedDiskQueue = {
    dir: input.dir,
    maxBytes: input.maxBytes ?? 1024 * 1024 * 1024,
    segmentBytes: input.segmentBytes ?? 16 * 1024 * 1024,
    fsync: input.fsync ?? true,
  };
  if (out.segmentBytes > out.maxBytes) {
    throw new InvalidOptionError(`Expected \`${path}.segmentBytes\` (${out.segmentBytes}) to be ≤ \`${path}.maxBytes\` (${out.maxBytes})`);
  }
  return out;
}

export function resolveBatch(path: string, input: BatchOptions | undefined, base: ResolvedBatch): ResolvedBatch {
  checkObject(path, input);
  checkKeys(path, input, BATCH_KEYS);
  checkInt(`${path}.maxRecords`, input?.maxRecords, 1);
  checkInt(`${path}.maxBytes`, input?.maxBytes, 1);
  checkInt(`${path}.maxWaitMs`, input?.maxWaitMs, 0);
  return {
    maxRecords: input?.maxRecords ?? base.maxRecords,
    maxBytes: input?.maxBytes ?? base.maxBytes,
    maxWaitMs: input?.maxWaitMs ?? base.maxWaitMs,
  };
}

export function resolveRetry(path: string, input: RetryOptions | undefined, base: ResolvedRetry): ResolvedRetry {
  checkObject(path, input);
  checkKeys(path, input, RETRY_KEYS);
  checkInt(`${path}.baseDelayMs`, input?.baseDelayMs, 0);
  checkInt(`${path}.maxDelayMs`, input?.maxDelayMs, 0);
  checkNumber(`${path}.factor`, input?.factor, 1);
  checkInt(`${path}.maxAttempts`, input?.maxAttempts, 1, true);
  checkInt(`${path}.maxRetryAfterMs`, input?.maxRetryAfterMs, 0);
  const out: ResolvedRetry = {
    baseDelayMs: input?.baseDelayMs ?? base.baseDelayMs,
    maxDelayMs: input?.maxDelayMs ?? base.maxDelayMs,
    factor: input?.factor ?? base.factor,
    maxAttempts: input?.maxAttempts ?? base.maxAttempts,
    maxRetryAfterMs: input?.maxRetryAfterMs ?? base.maxRetryAfterMs,
  };
  if (out.maxDelayMs < out.baseDelayMs) {
    throw new InvalidOptionError(
      `Expected \`${path}.maxDelayMs\` (${out.maxDelayMs}) to be ≥ \`${path}.baseDelayMs\` (${out.baseDelayMs})`,
    );
  }
  return out;
}

export interface ResolvedAggregatorOptions {
  checkpointDir: string | undefined;
  queue: ResolvedQueue;
  batch: ResolvedBatch;
  /** The `batch` fields the user set: they win over a sink's own suggestion, which wins over the library's defaults. */
  batchSet: Partial<ResolvedBatch>;
  retry: ResolvedRetry;
  hostName: string | undefined;
  credit: { records: number; bytes: number };
}

export function resolveAggregatorOptions(input: AggregatorOptions | undefined): ResolvedAggregatorOptions {
  checkObject("options", input);
  checkKeys("", input, AGGREGATOR_KEYS);
  const o = input ?? {};
  if (o.checkpointDir !== undefined && (typeof o.checkpointDir !== "string" || o.checkpointDir.length === 0)) {
    throw new InvalidOptionError(`Expected \`checkpointDir\` to be a non-empty path string, got ${describe(o.checkpointDir)}`);
  }
  if (o.hostName !== undefined && typeof o.hostName !== "string") {
    throw new InvalidOptionError(`Expected \`hostName\` to be a string, got ${describe(o.hostName)}`);
  }
  checkObject("credit", o.credit);
  checkKeys("credit", o.credit, CREDIT_KEYS);
  checkInt("credit.records", o.credit?.records, 1);
  checkInt("credit.bytes", o.credit?.bytes, 1024);
  return {
    checkpointDir: o.checkpointDir,
    queue: resolveQueue("queue", o.queue, DEFAULT_QUEUE),
    batch: resolveBatch("batch", o.batch, DEFAULT_BATCH),
    batchSet: stripUndefined(o.batch),
    retry: resolveRetry("retry", o.retry, DEFAULT_RETRY),
    hostName: o.hostName,
    credit: { records: o.credit?.records ?? 8_192, bytes: o.credit?.bytes ?? 8 * 1024 * 1024 },
  };
}

/** The sink names a source routes to, or undefined for every sink. Names are checked against sinks later. */
export function resolveSourceOptions(input: SourceOptions | undefined): readonly string[] | undefined {
  checkObject("source options", input);
  checkKeys("", input, SOURCE_KEYS);
  const sinks = input?.sinks;
  if (sinks === undefined) return undefined;
  if (!Array.isArray(sinks) || sinks.length === 0) {
    throw new InvalidOptionError(`Expected \`sinks\` to be a non-empty array of sink names, got ${describe(sinks)}`);
  }
  const names = new Set<string>();
  for (let i = 0; i < sinks.length; i++) {
    const name: unknown = sinks[i];
    checkName(`sinks[${i}]`, name);
    if (names.has(name)) throw new InvalidOptionError(`\`sinks\` names "${name}" twice`);
    names.add(name);
  }
  return [...names];
}

export function resolveSinkOptions(
  input: SinkOptions | undefined,
  defaults: ResolvedAggregatorOptions,
  suggested: { batch?: Partial<ResolvedBatch>; concurrency?: number } | undefined,
): ResolvedSinkOptions {
  checkObject("sink options", input);
  checkKeys("", input, SINK_KEYS);
  const o = input ?? {};
  if (o.filter !== undefined && typeof o.filter !== "function") {
    throw new InvalidOptionError(`Expected \`filter\` to be a function, got ${describe(o.filter)}`);
  }
  if (o.deadLetter !== undefined) checkName("deadLetter", o.deadLetter);
  if (o.concurrency !== undefined && o.concurrency !== "adaptive" && !(Number.isSafeInteger(o.concurrency) && o.concurrency >= 1)) {
    throw new InvalidOptionError(`Expected \`concurrency\` to be a positive integer or "adaptive", got ${describe(o.concurrency)}`);
  }
  checkInt("maxConcurrency", o.maxConcurrency, 1);
  if (o.maxConcurrency !== undefined && o.concurrency !== "adaptive") {
    throw new InvalidOptionError('`maxConcurrency` applies to `concurrency: "adaptive"` only');
  }
  checkInt("sendTimeoutMs", o.sendTimeoutMs, 1);
  checkInt("openTimeoutMs", o.openTimeoutMs, 1);
  // A custom sink's own suggestion is checked like the user's options (it is JavaScript too).
  checkInt("sink.pipelineDefaults.concurrency", suggested?.concurrency, 1);
  // The sink's suggestion (the Elasticsearch sink's 5 MiB bodies) stands in for the library's defaults only: what the
  // user set for every sink on the Aggregator wins over it, and the sink's own options over both.
  const batchBase: ResolvedBatch = { ...defaults.batch, ...stripUndefined(suggested?.batch), ...defaults.batchSet };
  const queue = resolveQueue("queue", o.queue, defaults.queue);
  const batch = resolveBatch("batch", o.batch, batchBase);
  if (batch.maxRecords > queue.maxRecords) {
    if (o.batch?.maxRecords !== undefined) {
      throw new InvalidOptionError(
        `Expected \`batch.maxRecords\` (${batch.maxRecords}) to be ≤ \`queue.maxRecords\` (${queue.maxRecords})`,
      );
    }
    batch.maxRecords = queue.maxRecords; // only the defaults disagree: a small queue implies small batches
  }
  return {
    queue,
    batch,
    retry: resolveRetry("retry", o.retry, defaults.retry),
    deadLetter: o.deadLetter,
    filter: o.filter,
    concurrency: o.concurrency === "adaptive" ? (o.maxConcurrency ?? 8) : (o.concurrency ?? suggested?.concurrency ?? 1),
    adaptive: o.concurrency === "adaptive",
    sendTimeoutMs: o.sendTimeoutMs ?? 120_000,
    openTimeoutMs: o.openTimeoutMs ?? 60_000,
  };
}

function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (o === undefined) return out;
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
