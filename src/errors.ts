// Every failure the library reports is an AggregatorError with a stable `code`; messages never carry credentials.
import { redact } from "./util/redact.js";

const kAggregatorError = Symbol.for("child-log-agg.error");

/** Stable error codes. The README's error table lists each with its meaning. */
export type ErrorCode =
  | "ERR_INVALID_OPTION"
  | "ERR_DUPLICATE_NAME"
  | "ERR_UNKNOWN_SINK"
  | "ERR_INVALID_STATE"
  | "ERR_AGGREGATOR_STOPPED"
  | "ERR_RECORD_UNSERIALIZABLE"
  | "ERR_COLLECTOR_START_TIMEOUT"
  | "ERR_COLLECTOR_CRASHED"
  | "ERR_COLLECTOR_FAILED"
  | "ERR_CHANNEL_PROTOCOL"
  | "ERR_SINK_SEND"
  | "ERR_SINK_REJECTED"
  | "ERR_SINK_PROTOCOL"
  | "ERR_SINK_AUTH"
  | "ERR_SINK_TIMEOUT"
  | "ERR_SINK_OPEN"
  | "ERR_TLS"
  | "ERR_CHECKPOINT"
  | "ERR_SINK_FILTER"
  | "ERR_LISTENER";

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
  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_INVALID_OPTION", message, options);
  }
}

/** A source or sink name was used twice. */
export class DuplicateNameError extends AggregatorError {
  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_DUPLICATE_NAME", message, options);
  }
}

/** A sink name (for example a `deadLetter` target) does not exist. */
export class UnknownSinkError extends AggregatorError {
  constructor(message: string, options?: AggregatorErrorOptions) {
    super("ERR_UNKNOWN_SINK", message, options);
  }
}

/** A collector child process failed: it crashed, never said ready, or spoke an invalid protocol. */
export class CollectorError extends AggregatorError {
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
}

/** A sink failed to deliver. `retryable` says whether the engine will retry. */
export class SinkError extends AggregatorError {
  /** HTTP status (or item status) when there was one. */
  statusCode?: number;
  /** Whether the engine treats this failure as transient. */
  retryable = true;
  /** Milliseconds the server asked to wait (Retry-After), when it did. */
  retryAfterMs?: number;
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
