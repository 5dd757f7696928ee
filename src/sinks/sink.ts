// The pluggable sink contract: a sink sends a batch and classifies what happened; the engine owns retries.
import type { LogRecord } from "../record.js";

/** What happened to one record of a batch. */
export type RecordOutcome =
  | { readonly status: "delivered" }
  | {
      readonly status: "retry";
      /** Short, stable reason (for example `http_429`, `es_rejected_execution_exception`). */
      readonly reason?: string;
      /** Wait at least this long before the next attempt (a server's Retry-After). */
      readonly retryAfterMs?: number;
      readonly error?: unknown;
    }
  | {
      readonly status: "rejected";
      /** Why the destination will never accept this record; kept on the dead letter. */
      readonly reason: string;
      readonly error?: unknown;
    };

/**
 * Result of `Sink.send`. Return nothing (or `Outcome.delivered`) when the whole batch was delivered,
 * one outcome for the whole batch, or `{ outcomes }` with exactly one entry per record, in batch order.
 * A thrown error counts as "retry the whole batch", unless it is a `SinkError` whose `retryable` is false.
 */
export type SendResult = void | undefined | RecordOutcome | { readonly outcomes: readonly RecordOutcome[] };

/** A batch handed to `Sink.send`. Records are in queue order. */
export interface Batch {
  /** Number of records. */
  readonly length: number;
  /** The records as objects (parsed lazily from `json` the first time this is read). Treat as read-only. */
  readonly records: readonly LogRecord[];
  /** The canonical JSON text of each record (no trailing newline). Sinks that send JSON should reuse it. */
  readonly json: readonly string[];
  /**
   * The name of the source each record came from: a collector source's, or `write()`'s `source` ("host" by default).
   * `undefined` only in batches built by `createBatch` without one.
   */
  readonly sources: readonly (string | undefined)[];
  /** Sum of the JSON lengths. */
  readonly bytes: number;
  /** 1 on a first send; higher when this batch holds records being retried. */
  readonly attempt: number;
}

export interface SendContext {
  /** Aborted when the aggregator gives up on this send (stop deadline, sink removal). Honour it. */
  readonly signal: AbortSignal;
}

export interface SinkLifecycleContext {
  /** Aborted when the aggregator's deadline for open/close passes. */
  readonly signal: AbortSignal;
}

/** What `close()` gets: the deadline, and a way to say that records reported delivered were lost after all. */
export interface SinkCloseContext extends SinkLifecycleContext {
  /**
   * Records the sink had reported delivered that it now knows are lost (a TCP sink's resend of what a broken
   * connection left in doubt, cut short by the deadline). The aggregator moves them from `delivered` to
   * `dropped.lostAtClose` and announces them with a `drop` event. Their positions were committed already.
   * `detail` says why, in words (it is redacted before it is shown). The aggregator always passes it; a caller that
   * closes a sink itself may not.
   */
  readonly lost?: ((count: number, detail: string) => void) | undefined;
}

/** Flat numeric metrics a sink may expose; the aggregator prefixes them with the sink name. */
export type SinkMetrics = Readonly<Record<string, number>>;

/**
 * Implement this to ship records anywhere. Keep `send` free of retries and sleeps: classify and return.
 *
 * ```ts
 * const sink: Sink = {
 *   name: "stdout",
 *   async send(batch) { process.stdout.write(batch.json.join("\n") + "\n"); },
 * };
 * ```
 */
export interface Sink {
  /** Unique among the aggregator's sinks. Used in events, metrics and `deadLetter` references. */
  readonly name: string;
  /** Connect or verify the destination. Called once by `start()` (or by `addSink()` after start). */
  open?(ctx: SinkLifecycleContext): Promise<void> | void;
  /** Send one batch and say what happened to each record. */
  send(batch: Batch, ctx: SendContext): Promise<SendResult> | SendResult;
  /**
   * Flush and release resources. Called after the sink's queue drained (or the deadline passed). It may say that
   * records it reported delivered were lost after all (`ctx.lost`).
   */
  close?(ctx: SinkCloseContext): Promise<void> | void;
  /**
   * Sink-specific numbers (requests, bytes, per-status counts, latency buckets). Each key is a running total, which
   * `prometheus()` exports as a `…_total` counter and which must never go down, unless `gauges` names it. Values
   * that are not finite numbers are left out of `metrics()`.
   */
  metrics?(): SinkMetrics;
  /** Keys of `metrics()` that are levels (open connections, bytes buffered now): `prometheus()` exports them as gauges. */
  readonly gauges?: readonly string[];
  /** Per-sink pipeline defaults that suit this transport (the user's options still win). */
  readonly pipelineDefaults?:
    | {
        batch?: { maxRecords?: number | undefined; maxBytes?: number | undefined; maxWaitMs?: number | undefined } | undefined;
        concurrency?: number | undefined;
      }
    | undefined;
}

const DELIVERED: RecordOutcome = Object.freeze({ status: "delivered" });

/** Constructors for outcomes, so sinks stay short and allocate nothing on the all-delivered path. */
export const Outcome = {
  delivered: DELIVERED as RecordOutcome,
  retry(reason?: string, retryAfterMs?: number, error?: unknown): RecordOutcome {
    return { status: "retry", reason, retryAfterMs, error };
  },
  reject(reason: string, error?: unknown): RecordOutcome {
    return { status: "rejected", reason, error };
  },
  perRecord(outcomes: readonly RecordOutcome[]): { readonly outcomes: readonly RecordOutcome[] } {
    return { outcomes };
  },
} as const;
