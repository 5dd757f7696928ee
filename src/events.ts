// The typed event map of Aggregator. Events are telemetry: every failure is also owned by a promise or the report.
import type { AggregatorError, CollectorError, SinkError } from "./errors.js";
import type { LogLevel } from "./record.js";

/** Why records were dropped. Stable strings; the README's table explains each. */
export type DropReason =
  /** The sink's queue was full and its policy is `dropNewest` or `dropOldest`. */
  | "queueFull"
  /** One record is larger than the sink's `queue.maxBytes`. */
  | "tooLarge"
  /** The sink rejected the record and the sink has no `deadLetter`. */
  | "rejected"
  /** `retry.maxAttempts` ran out and the sink has no `deadLetter`. */
  | "retriesExhausted"
  /** The dead-letter sink itself rejected or gave up on the record. */
  | "deadLetterFailed"
  /** The record could not be serialized to JSON (cycles, BigInt…). */
  | "unserializable"
  /**
   * `write()` refused the records: their source already had a full backlog (the `credit` window) waiting for queue
   * room, or the aggregator was stopping or stopped.
   */
  | "writeRefused"
  /** `removeSink()` reached its deadline with records still held. */
  | "sinkRemoved"
  /** `removeSource()` reached its deadline with records of the source still waiting for queue room (never routed). */
  | "sourceRemoved"
  /** Records of a disk queue that could not be read back (a checksum or length that does not match, a torn write). */
  | "diskCorrupt"
  /**
   * Records the sink had reported delivered that its `close()` reports lost (`ctx.lost`): a TCP/TLS sink's resend
   * of what a broken connection left in doubt, which the close deadline (or three failed attempts) cut short.
   * They move from `delivered` to here. Their positions were committed already: they are not read again.
   */
  | "lostAtClose"
  /**
   * Records a collector dropped before the host saw them (an `emit()` not awaited past the credit window, a record
   * over 16 MiB, a UDP message with no credit, …). `detail` names the collector counter, which
   * `report.sources[name].collector` keeps by kind (see COLLECTOR_DROP_KEYS). Announced as the collector reports
   * them: once a second, and when it stops.
   */
  | "collector";

export interface DropEvent {
  /** The sink that dropped the records; `undefined` when dropped before routing (e.g. unserializable). */
  sink: string | undefined;
  /** The source the records came from, when known and uniform. */
  source?: string | undefined;
  reason: DropReason;
  count: number;
  /** Why, in words (a sink's rejection reason, the serializer's error…). Redacted. */
  detail?: string;
  error?: AggregatorError | Error;
}

export interface RetryEvent {
  sink: string;
  count: number;
  /** The attempt that failed (1 = first send). */
  attempt: number;
  delayMs: number;
  reason: string;
  /**
   * True when the sink backs off before sending anything else: a whole send failed and nothing says the destination is
   * well, or the server asked for a pause (Retry-After). False for records retried on their own while the destination
   * takes others (failed items of a batch, or a batch that failed again after other records were delivered), which
   * hold nothing back.
   */
  wholeBatch: boolean;
}

export interface DeadLetterEvent {
  sink: string;
  deadLetter: string;
  count: number;
  reason: string;
}

export interface SourceReadyEvent {
  source: string;
  pid: number | undefined;
}

export interface SourceExitEvent {
  source: string;
  pid: number | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  forceKilled: boolean;
  /** True when the exit was asked for (stop, removeSource). */
  expected: boolean;
  restarts: number;
  stderrTail: string[];
}

export interface SourceRestartEvent {
  source: string;
  /** Restarts so far, including this one. */
  restarts: number;
  delayMs: number;
}

export interface SourceFailedEvent {
  source: string;
  error: CollectorError;
}

export interface SourceErrorEvent {
  source: string;
  error: AggregatorError;
}

/** A collector's own diagnostics (a ScriptSource collector's `log.info(…)`): telemetry, not shipped to sinks. */
export interface SourceLogEvent {
  source: string;
  level: LogLevel;
  /** Redacted. */
  message: string;
  /** The fields passed with the message (JSON, redacted). */
  fields?: Record<string, unknown>;
}

export interface SinkErrorEvent {
  sink: string;
  error: SinkError | AggregatorError;
}

export interface DeliveredEvent {
  sink: string;
  count: number;
}

/** The event map: `agg.on("drop", (e) => …)` gets a typed `DropEvent`. */
export interface AggregatorEvents {
  drop: [event: DropEvent];
  retry: [event: RetryEvent];
  deadLetter: [event: DeadLetterEvent];
  delivered: [event: DeliveredEvent];
  "source:ready": [event: SourceReadyEvent];
  "source:exit": [event: SourceExitEvent];
  "source:restart": [event: SourceRestartEvent];
  "source:failed": [event: SourceFailedEvent];
  "source:error": [event: SourceErrorEvent];
  "source:log": [event: SourceLogEvent];
  "sink:error": [event: SinkErrorEvent];
  /** Errors not owned by one source or sink: an event listener that threw (ERR_LISTENER). */
  error: [error: AggregatorError];
}
