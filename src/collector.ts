// child-log-agg/collector: the kit for custom collectors. A module whose default export is `defineCollector(fn)`
// runs inside a ScriptSource's child process; `fn` gets a credit-aware `emit`, an abort signal for stop, its
// options and a log for its own diagnostics (as pino-abstract-transport's `build(fn, { close })` does for transports).
import { InvalidOptionError } from "./errors.js";
import { describe } from "./pipeline/serialize.js";
import type { ParseFunction } from "./collector/parse/types.js";
import type { LogRecordInput } from "./record.js";

export type { LogRecordInput, LogRecord, LogLevel } from "./record.js";
export type { ParseFunction } from "./collector/parse/types.js";

/** Brand in the global symbol registry, so a definition made by another copy of the library is still recognized. */
const kCollector = Symbol.for("child-log-agg.collector");

/** What `emit` accepts: a record object, a line of text (parsed by the source's `parser` or `parse`), or an array of them. */
export type Emittable = LogRecordInput | string;

/**
 * Diagnostics about the collector itself (not log data): they reach the host as `source:log` events, not sinks.
 * They never throw: a message that is not a string is turned into text, fields that are not JSON become
 * `{ unserializable: true }`.
 */
export interface CollectorLog {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What the collector function receives. */
export interface CollectorContext<Options = Record<string, unknown>> {
  /**
   * Ship records. Each record is read like a parsed JSON line: `message` (or `msg`, `log`, `text`), the level
   * (`level`, `log.level`, `severity`…, normalized) and the timestamp (`@timestamp`, `timestamp`, `time`…; else
   * the time of the call) are extracted; `service.name` (the source name), `host.name` and the source's `fields`
   * are added. A string is one line for the source's `parser` (or the definition's `parse`).
   *
   * **Await it**: the promise resolves at once while the host has credit, and otherwise only when credit is
   * back. That is the backpressure from a slow sink to your loop. Calls that are not awaited wait in the collector
   * process, up to one credit window (the aggregator's `credit`: 8,192 records / 8 MiB of JSON by default); a call
   * made while that much waits is dropped and counted (`overflowRecords`), so a loop that never awaits cannot exhaust
   * its memory. Records that are not objects or strings, cannot be serialized (cycles, BigInt), or whose JSON would
   * not be an object (a Map or Set, a Promise, a `toJSON()` that returns a string) are dropped and counted (`invalidRecords`).
   * Either drop is announced once per collector run as a `warn` log; emit() never throws or rejects.
   */
  emit(records: Emittable | readonly Emittable[]): Promise<void>;
  /** Aborted when the source stops. Return from the function soon after (pass it to `fetch`, timers…). */
  readonly signal: AbortSignal;
  /** The ScriptSource's `options` (JSON). @default {} */
  readonly options: Options;
  /** Diagnostics for the host (`agg.on("source:log", …)`), rate-limited; not shipped to sinks. */
  readonly log: CollectorLog;
  /** The source's name. */
  readonly name: string;
  /**
   * Where to resume: the last value given to `commit()` whose records every sink had settled, as the aggregator's
   * `checkpointDir` held it when this collector started (a fresh copy). `undefined` on a source's first run, and
   * always without `checkpointDir`.
   */
  readonly cursor: unknown;
  /**
   * Save `cursor` (any JSON value: a page token, a journald cursor, a timestamp) as the point to resume from once
   * every record emitted before this call is settled by every sink (delivered, dead-lettered or dropped). It is then
   * written to the aggregator's `checkpointDir` like a file source's positions (atomically, at most every
   * `checkpointIntervalMs`), and the next run of the collector finds it in `cursor`: a crash replays what was
   * emitted after the last cursor written, never skips it (at-least-once). Without `checkpointDir` it does nothing.
   * A value that is not JSON (a function, a cycle, BigInt) throws `ERR_INVALID_OPTION`.
   */
  commit(cursor: unknown): void;
}

/**
 * The collector's body. It should run until `signal` aborts: returning or throwing earlier counts as the
 * collector exiting, and the supervisor restarts it (with backoff) per the source's `restart` policy.
 */
export type CollectorFunction<Options = Record<string, unknown>> = (context: CollectorContext<Options>) => Promise<void> | void;

export interface DefineCollectorOptions {
  /**
   * Called once after the function returned or threw (`error` set), before the process exits; release what the
   * function opened. Bounded by the source's `killAfterMs`.
   */
  close?: (error?: unknown) => Promise<void> | void;
  /**
   * Turns a string passed to `emit` into fields, instead of the source's `parser`. Return a plain object,
   * or `null`/`undefined` to keep the line as a plain message. A throw counts as a parse error.
   */
  parse?: ParseFunction;
}

/** What `defineCollector` returns; the module's default export. `run` may be called directly in unit tests. */
export interface CollectorDefinition<Options = Record<string, unknown>> {
  readonly run: CollectorFunction<Options>;
  readonly close: ((error?: unknown) => Promise<void> | void) | undefined;
  readonly parse: ParseFunction | undefined;
}

/**
 * Define a custom collector. Export the result as the module's default export and point a `ScriptSource` at the
 * module:
 *
 * ```js
 * import { defineCollector } from "child-log-agg/collector";
 * export default defineCollector(async ({ emit, signal, options, log }) => {
 *   while (!signal.aborted) {
 *     const res = await fetch(options.url, { signal });
 *     await emit({ message: "polled", status: res.status });
 *     await new Promise((r) => setTimeout(r, 1_000));
 *   }
 * });
 * ```
 */
export function defineCollector<Options = Record<string, unknown>>(
  run: CollectorFunction<Options>,
  options: DefineCollectorOptions = {},
): CollectorDefinition<Options> {
  if (typeof run !== "function") {
    throw new InvalidOptionError(`Expected the collector to be a function ({ emit, signal, options, log }) => …, got ${describe(run)}`);
  }
  if (options === null || typeof options !== "object") {
    throw new InvalidOptionError(`Expected the defineCollector options to be an object, got ${describe(options)}`);
  }
  if (options.close !== undefined && typeof options.close !== "function") {
    throw new InvalidOptionError(`Expected \`close\` to be a function, got ${describe(options.close)}`);
  }
  if (options.parse !== undefined && typeof options.parse !== "function") {
    throw new InvalidOptionError(`Expected \`parse\` to be a function, got ${describe(options.parse)}`);
  }
  const definition: CollectorDefinition<Options> = { run, close: options.close, parse: options.parse };
  // Non-enumerable: the brand is how the collector runtime recognizes a definition, not part of its data.
  Object.defineProperty(definition, kCollector, { value: true });
  return Object.freeze(definition);
}

/** True for what `defineCollector` returned (from any copy of the library). */
export function isCollectorDefinition(value: unknown): value is CollectorDefinition<unknown> {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[kCollector] === true;
}
