// Every failure the library reports is an AggregatorError with a stable `code`, of the one subclass that code belongs to
// (ERROR_CLASSES); messages never carry credentials.
import { redact } from "./util/redact.js";

const kAggregatorError = Symbol.for("child-log-agg.error");

/** Stable error codes. The README's error table lists each with its meaning and its class. */
export type ErrorCode =
  | "ERR_INVALID_OPTION"
  | "ERR_DUPLICATE_NAME"
  | "ERR_UNKNOWN_SINK"
  | "ERR_INVALID_STATE"
  | "ERR_AGGREGATOR_STOPPED"
  | "ERR_BACKLOG_FULL"
  | "ERR_RECORD_UNSERIALIZABLE"
  | "ERR_COLLECTOR_START_TIMEOUT"
  | "ERR_COLLECTOR_CRASHED"
  | "ERR_COLLECTOR_FAILED"
  | "ERR_COLLECTOR_STALLED"
  | "ERR_CHANNEL_PROTOCOL"
  | "ERR_SINK_SEND"
  | "ERR_SINK_REJECTED"
  | "ERR_SINK_PROTOCOL"
  | "ERR_SINK_AUTH"
  | "ERR_SINK_TIMEOUT"
  | "ERR_SINK_OPEN"
  | "ERR_SINK_CLOSE"
  | "ERR_TLS"
  | "ERR_CHECKPOINT"
  | "ERR_SINK_FILTER"
  | "ERR_LISTENER"
  | "ERR_DISK_QUEUE";

export interface AggregatorErrorOptions {
  cause?: unknown;
  /** Name of the source or sink the error concerns. */
  source?: string;
  sink?: string;
}

/** Base class of every error the library raises or reports. `code` is stable across releases. */
export class AggregatorError extends Error {
  readonly code: ErrorCode;
  readonly source?: string;
  readonly sink?: string;

  constructor(code: ErrorCode, message: string, options: AggregatorErrorOptions = {}) {
    // Redact before raising: a URL or header that slipped into a message must not leak.
    super(redact(message), options.cause === undefined ? undefined : { cause: sanitizeCause(options.cause) });
    this.code = code;
    if (options.source !== undefined) this.source = options.source;
    if (options.sink !== undefined) this.sink = options.sink;
  }

  override get name(): string {
    return this.constructor.name;
  }

  get [kAggregatorError](): true {
    return true;
  }

  /** Brand check that works across copies of the library (e.g. two installed versions). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== AggregatorError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[kAggregatorError] === true;
  }
}

/** An option or argument was invalid. Thrown synchronously by the call that received it. */
export class InvalidOptionError extends AggregatorError {
  declare readonly code: "ERR_INVALID_OPTION";

  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_INVALID_OPTION", message, options);
  }
}

/** A source or sink name was used twice. */
export class DuplicateNameError extends AggregatorError {
  declare readonly code: "ERR_DUPLICATE_NAME";

  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_DUPLICATE_NAME", message, options);
  }
}

/** A sink name (for example a `deadLetter` target) does not exist. */
export class UnknownSinkError extends AggregatorError {
  declare readonly code: "ERR_UNKNOWN_SINK";

  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_UNKNOWN_SINK", message, options);
  }
}

/**
 * A call the aggregator (or a sink) cannot take in its current state: `start()` twice, `write()` after `stop()`, a
 * `write()` whose source already has a full backlog of records waiting for queue room.
 */
export class StateError extends AggregatorError {
  declare readonly code: "ERR_INVALID_STATE" | "ERR_AGGREGATOR_STOPPED" | "ERR_BACKLOG_FULL";

  constructor(code: StateError["code"], message: string, options?: AggregatorErrorOptions) {
    super(code, message, options);
  }
}

/** A record could not be taken in (it could not be serialized); it is dropped, counted and announced. */
export class RecordError extends AggregatorError {
  declare readonly code: "ERR_RECORD_UNSERIALIZABLE";

  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_RECORD_UNSERIALIZABLE", message, options);
  }
}

/** A collector child process failed: it crashed, never said ready, or spoke an invalid protocol. */
export class CollectorError extends AggregatorError {
  declare readonly code:
    | "ERR_COLLECTOR_START_TIMEOUT"
    | "ERR_COLLECTOR_CRASHED"
    | "ERR_COLLECTOR_FAILED"
    | "ERR_COLLECTOR_STALLED"
    | "ERR_CHANNEL_PROTOCOL";
  /** Exit code, when the child exited. */
  exitCode?: number | null;
  /** Signal that ended the child, when it was signalled. */
  signal?: NodeJS.Signals | null;
  /** True when the supervisor had to SIGKILL the process group. */
  forceKilled?: boolean;
  /** Restarts so far. */
  restarts?: number;
  /** The last lines the child wrote to stderr (redacted). */
  stderrTail?: string[];

  constructor(code: CollectorError["code"], message: string, options?: AggregatorErrorOptions) {
    super(code, message, options);
  }
}

/** A collector could not read or write its checkpoint file. Collecting goes on; the write is retried. */
export class CheckpointError extends AggregatorError {
  declare readonly code: "ERR_CHECKPOINT";

  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_CHECKPOINT", message, options);
  }
}

/** A sink failed to open, deliver, close or filter. `retryable` says whether the engine will retry a send. */
export class SinkError extends AggregatorError {
  declare readonly code:
    | "ERR_SINK_SEND"
    | "ERR_SINK_REJECTED"
    | "ERR_SINK_PROTOCOL"
    | "ERR_SINK_AUTH"
    | "ERR_SINK_TIMEOUT"
    | "ERR_SINK_OPEN"
    | "ERR_SINK_CLOSE"
    | "ERR_SINK_FILTER"
    | "ERR_TLS";
  /** HTTP status (or item status) when there was one. */
  statusCode?: number;
  /** Whether the engine treats this failure as transient. */
  retryable = true;
  /** Milliseconds the server asked to wait (Retry-After), when it did. */
  retryAfterMs?: number;

  constructor(code: SinkError["code"], message: string, options?: SinkErrorOptions) {
    // From JavaScript, `new SinkError("connection refused")` or another class's code: the code stays one of a
    // SinkError's (a stable ERR_SINK_SEND), and the text is kept as the message.
    const known = SINK_CODES.has(code);
    super(known ? code : "ERR_SINK_SEND", typeof message === "string" ? message : String(code), options);
    if (options?.statusCode !== undefined) this.statusCode = options.statusCode;
    // Only `false` is documented; from JavaScript, a falsy value means the same rather than "retry for ever".
    if (options?.retryable !== undefined) this.retryable = Boolean(options.retryable);
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

const SINK_CODES: ReadonlySet<string> = new Set<SinkError["code"]>([
  "ERR_SINK_SEND",
  "ERR_SINK_REJECTED",
  "ERR_SINK_PROTOCOL",
  "ERR_SINK_AUTH",
  "ERR_SINK_TIMEOUT",
  "ERR_SINK_OPEN",
  "ERR_SINK_CLOSE",
  "ERR_SINK_FILTER",
  "ERR_TLS",
]);

/** A SinkError's options: a custom sink that throws one says with them how the engine should treat it. */
export interface SinkErrorOptions extends AggregatorErrorOptions {
  statusCode?: number | undefined;
  /** False: a permanent failure (the records go to the dead letters, or are dropped as rejected). @default true */
  retryable?: boolean | undefined;
  retryAfterMs?: number | undefined;
}

/** An event listener of the host's threw; reported as the aggregator's `error` event. */
export class ListenerError extends AggregatorError {
  declare readonly code: "ERR_LISTENER";

  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_LISTENER", message, options);
  }
}

/**
 * A sink's disk queue could not be used: its directory is locked by another process or cannot be written (thrown by
 * addSink()), or a write, read, delete or position update failed (reported as `sink:error`; records that could not
 * be written stay in memory, and the queue takes no more for a few seconds).
 */
export class DiskQueueError extends AggregatorError {
  declare readonly code: "ERR_DISK_QUEUE";

  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_DISK_QUEUE", message, options);
  }
}

type Make<C extends ErrorCode> = (code: C, message: string, options?: AggregatorErrorOptions) => AggregatorError;

// A class of one code is made from the message alone; a class of several codes is given the code too.

const fixed =
  (Class: new (message: string, options?: AggregatorErrorOptions) => AggregatorError): Make<ErrorCode> =>
  (_code, message, options) =>
    new Class(message, options);

const coded =
  <C extends ErrorCode>(Class: new (code: C, message: string, options?: AggregatorErrorOptions) => AggregatorError): Make<C> =>
  (code, message, options) =>
    new Class(code, message, options);

/**
 * The one class of each code (the README's error table shows it): whoever makes an error for a code gets the same
 * class, so `instanceof SinkError` answers alike wherever an ERR_SINK_* comes from. Typed over every ErrorCode, so a
 * code added without a class does not compile.
 */
const ERROR_CLASSES: { readonly [C in ErrorCode]: Make<C> } = {
  ERR_INVALID_OPTION: fixed(InvalidOptionError),
  ERR_DUPLICATE_NAME: fixed(DuplicateNameError),
  ERR_UNKNOWN_SINK: fixed(UnknownSinkError),
  ERR_INVALID_STATE: coded(StateError),
  ERR_AGGREGATOR_STOPPED: coded(StateError),
  ERR_BACKLOG_FULL: coded(StateError),
  ERR_RECORD_UNSERIALIZABLE: fixed(RecordError),
  ERR_COLLECTOR_START_TIMEOUT: coded(CollectorError),
  ERR_COLLECTOR_CRASHED: coded(CollectorError),
  ERR_COLLECTOR_FAILED: coded(CollectorError),
  ERR_COLLECTOR_STALLED: coded(CollectorError),
  ERR_CHANNEL_PROTOCOL: coded(CollectorError),
  ERR_SINK_SEND: coded(SinkError),
  ERR_SINK_REJECTED: coded(SinkError),
  ERR_SINK_PROTOCOL: coded(SinkError),
  ERR_SINK_AUTH: coded(SinkError),
  ERR_SINK_TIMEOUT: coded(SinkError),
  ERR_SINK_OPEN: coded(SinkError),
  ERR_SINK_CLOSE: coded(SinkError),
  ERR_TLS: coded(SinkError),
  ERR_CHECKPOINT: fixed(CheckpointError),
  ERR_SINK_FILTER: coded(SinkError),
  ERR_LISTENER: fixed(ListenerError),
  ERR_DISK_QUEUE: fixed(DiskQueueError),
};

/** Every code, for the tests that check each one's class against the README. */
export const ERROR_CODES = Object.keys(ERROR_CLASSES) as readonly ErrorCode[];

/** A code that only arrives at run time (from a collector child, or from another copy of the library) is one of ours. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CLASSES, value);
}

/** An error of the class its code belongs to; for codes known only at run time. */
export function errorForCode(code: ErrorCode, message: string, options?: AggregatorErrorOptions): AggregatorError {
  return (ERROR_CLASSES[code] as Make<ErrorCode>)(code, message, options);
}

function sanitizeCause(cause: unknown): unknown {
  if (cause instanceof Error && !(cause instanceof AggregatorError)) {
    // Third-party errors (the ES client's, undici's) can hold request headers and URLs in their message.
    try {
      const message = redact(cause.message);
      if (message !== cause.message) {
        Object.defineProperty(cause, "message", { value: message, configurable: true, writable: true });
      }
      if (typeof cause.stack === "string") {
        Object.defineProperty(cause, "stack", { value: redact(cause.stack), configurable: true, writable: true });
      }
    } catch {
      // A frozen error keeps its text; it is still referenced only as `cause`.
    }
  }
  return cause;
}

export function isAggregatorError(value: unknown): value is AggregatorError {
  return value instanceof AggregatorError;
}
