// The script collector: loads the user's defineCollector() module in this child and runs its function with an
// emit() that honours the host's credit, an AbortSignal for stop, its options and a diagnostics log.
//
//   import(module) ─▶ defineCollector() definition? ──no──▶ throw (main: FATAL → host start() rejects)
//        │yes
//   READY ─▶ fn({ emit, signal, options, log })
//              emit ─▶ buildRecord ─▶ JSON ─▶ channel.push ──credit spent──▶ the promise waits for resume()
//                 └─ a credit window already waits (emit not awaited) ─▶ dropped, counted as overflowRecords
//              log  ─▶ LOG frame (rate-limited) ─▶ host "source:log" event
//              commit(cursor) ─▶ marked at the seq the next emitted record gets ─▶ host ACK past it ─▶ CheckpointStore
//   fn returns / throws ─▶ close() ─▶ done (the supervisor restarts it)
//   STOP ─▶ abort signal ─▶ await fn (≤ killAfterMs) ─▶ close() ─▶ flush
import { FrameType } from "../../channel/protocol.js";
import { InvalidOptionError } from "../../errors.js";
import { type CollectorContext, type CollectorDefinition, type CollectorLog, isCollectorDefinition } from "../../collector.js";
import { describe, opaqueObject, withErrorsAsJson } from "../../pipeline/serialize.js";
import { errorText, safeText } from "../../util/text.js";
import type { ScriptSpec } from "../../sources/specs.js";
import { CheckpointStore } from "../checkpoint-store.js";
import { buildRecord, createParser, type Parser, type RecordContext } from "../parse/index.js";
import type { ChildChannel } from "./channel.js";
import { startOrphanWatchdog } from "./orphan-watchdog.js";
import { PendingCursors } from "./pending-cursors.js";
import type { CollectorRun } from "./run.js";

/** LOG frames per second; more are counted as `logsDropped` (a chatty diagnostic loop must not flood the host). */
const LOGS_PER_SECOND = 200;
const MAX_LOG_MESSAGE = 8 * 1024;
const MAX_LOG_FIELDS_BYTES = 16 * 1024;

const RESOLVED: Promise<void> = Promise.resolve();

export interface ScriptCounters {
  /** Records and lines handed to emit(). */
  linesRead: number;
  /** Lines the parser (or `parse`) could not parse; still shipped as plain messages. */
  parseErrors: number;
  /** `__proto__` keys removed from parsed lines (see buildRecord). */
  droppedKeys: number;
  /** Blank lines, skipped. */
  blankLines: number;
  /** Not a record (number, null…) or unserializable (cycles, BigInt): dropped. */
  invalidRecords: number;
  /** Records still waiting for credit when stop's grace period ended (or emitted after it): not shipped. */
  unsent: number;
  /**
   * Records of emit() calls made while a credit window's worth of records already waited for credit (calls that
   * were not awaited): dropped, so a loop that never awaits cannot grow the collector without bound.
   */
  overflowRecords: number;
  logs: number;
  logsDropped: number;
}

interface Parked {
  lines: string[];
  /** A cursor committed after this call while it waited: it counts once all of the call's records are pushed. */
  cursor: string | undefined;
  /** Their JSON length in UTF-16 units (the memory they hold, near enough). */
  bytes: number;
  index: number;
  resolve: () => void;
}

/** `emit` and `log` of one incarnation: serializes at call time, pushes while there is credit, parks the rest. */
class ScriptEmitter {
  readonly counters: ScriptCounters = {
    linesRead: 0,
    parseErrors: 0,
    droppedKeys: 0,
    blankLines: 0,
    invalidRecords: 0,
    unsent: 0,
    overflowRecords: 0,
    logs: 0,
    logsDropped: 0,
  };
  private readonly queue: Parked[] = [];
  /** Records and bytes of the calls in `queue`, and what they may reach before further calls are dropped. */
  private parkedRecords = 0;
  private parkedBytes = 0;
  private readonly maxParked: { readonly records: number; readonly bytes: number };
  private readonly ctx: RecordContext;
  private readonly parser: Parser;
  private closed = false;
  private idleWaiter: (() => void) | undefined;
  private logWindow = 0;
  private logsInWindow = 0;
  private warnedInvalid = false;
  private warnedOverflow = false;
  readonly log: CollectorLog;

  constructor(
    spec: ScriptSpec,
    private readonly channel: ChildChannel,
    definition: CollectorDefinition<unknown>,
  ) {
    this.ctx = { now: "", source: spec.name, host: spec.hostName, fields: spec.fields };
    this.parser = createParser(definition.parse ?? spec.parser ?? "plain");
    // One credit window: as much again as the host lets the collector send ahead of it.
    this.maxParked = spec.credit;
    this.log = {
      debug: (m, f) => this.sendLog("debug", m, f),
      info: (m, f) => this.sendLog("info", m, f),
      warn: (m, f) => this.sendLog("warn", m, f),
      error: (m, f) => this.sendLog("error", m, f),
    };
  }

  readonly emit = (input: unknown): Promise<void> => {
    if (this.closed) {
      const n = isArrayInput(input) ? input.length : 1;
      // Handed to emit() (linesRead) and never sent (unsent), as the records left waiting at the stop are.
      this.counters.linesRead += n;
      this.counters.unsent += n;
      return RESOLVED;
    }
    const queued = this.queue.length > 0;
    // An awaiting caller finds the queue empty (its previous call has resolved): only calls made while others wait,
    // i.e. not awaited, can fill it.
    if (queued && (this.parkedRecords >= this.maxParked.records || this.parkedBytes >= this.maxParked.bytes)) return this.overflow(input);
    this.ctx.now = new Date().toISOString();
    const channel = this.channel;
    if (!queued && channel.hasCredit) {
      // Fast path: nothing waits and there is credit; push straight through, allocate nothing per call.
      if (isArrayInput(input)) {
        let i = 0;
        while (i < input.length && channel.hasCredit) this.pushLine(this.serialize(input[i++]));
        if (i < input.length) return this.park(this.serializeAll(input, i));
      } else {
        this.pushLine(this.serialize(input));
      }
      return channel.hasCredit ? RESOLVED : this.park([]);
    }
    // Serialize now, not when credit returns: `@timestamp` is the time of the call, and the caller may reuse its objects.
    return this.park(isArrayInput(input) ? this.serializeAll(input, 0) : this.serializeAll([input], 0));
  };

  /** Credit is back: push what waits, in call order; resolve each call once all its records are out and credit remains. */
  resume(): void {
    const q = this.queue;
    const channel = this.channel;
    while (q.length > 0 && channel.hasCredit) {
      const p = q[0]!;
      while (p.index < p.lines.length && channel.hasCredit) this.pushLine(p.lines[p.index++]!);
      if (!channel.hasCredit) return;
      this.settle(q.shift()!);
    }
    if (q.length === 0 && this.idleWaiter !== undefined) {
      this.idleWaiter();
      this.idleWaiter = undefined;
    }
  }

  /**
   * The source is stopping: calls whose records are all pushed and only wait for credit to come back resolve now,
   * so a loop stalled by a blocked sink sees the abort and returns. Calls with records still unsent keep waiting.
   */
  releasePushed(): void {
    const q = this.queue;
    while (q.length > 0 && q[0]!.index === q[0]!.lines.length) this.settle(q.shift()!);
    if (q.length === 0 && this.idleWaiter !== undefined) {
      this.idleWaiter();
      this.idleWaiter = undefined;
    }
  }

  /** Resolves when no emit() call waits for credit. */
  idle(): Promise<void> {
    if (this.queue.length === 0) return RESOLVED;
    return new Promise((resolve) => {
      this.idleWaiter = resolve;
    });
  }

  /** Stop shipping: what waits is counted as `unsent` and its calls resolve (the collector is being torn down). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    let unsent = 0;
    for (const p of this.queue.splice(0)) {
      const left = p.lines.length - p.index;
      // A cursor still counts when every record emitted before it was pushed.
      if (unsent === 0 && left === 0 && p.cursor !== undefined) this.onCursor(p.cursor);
      unsent += left;
      p.resolve();
    }
    this.parkedRecords = 0;
    this.parkedBytes = 0;
    this.counters.unsent += unsent;
    if (unsent > 0) this.notice("warn", `${unsent} emitted records were still waiting for credit when the collector stopped; not shipped`);
  }

  private park(lines: string[]): Promise<void> {
    let bytes = 0;
    for (let i = 0; i < lines.length; i++) bytes += lines[i]!.length;
    this.parkedRecords += lines.length;
    this.parkedBytes += bytes;
    return new Promise((resolve) => {
      this.queue.push({ lines, bytes, index: 0, cursor: undefined, resolve });
    });
  }

  /** A waiting call is through: all its records are pushed (or it is released for stop). */
  private settle(p: Parked): void {
    this.parkedRecords -= p.lines.length;
    this.parkedBytes -= p.bytes;
    if (p.cursor !== undefined) this.onCursor(p.cursor);
    p.resolve();
  }

  /** Called with a committed cursor (JSON) once every record emitted before its commit() is pushed. */
  onCursor: (json: string) => void = () => {};

  /** `commit(cursor)`: it follows the records of every call made before it, including calls still waiting. */
  readonly commit = (cursor: unknown): void => {
    let json: string | undefined;
    try {
      json = JSON.stringify(cursor);
    } catch (error) {
      throw new InvalidOptionError(`commit() needs a JSON value: ${errorText(error)}`, { cause: error });
    }
    if (json === undefined) throw new InvalidOptionError(`commit() needs a JSON value, got ${describe(cursor)}`);
    if (this.closed) return; // the records before it may be unsent: keep the last cursor that is known to hold
    const q = this.queue;
    if (q.length === 0) this.onCursor(json);
    else q[q.length - 1]!.cursor = json;
  };

  /**
   * A call made while a credit window's worth waits: its records are dropped before they are serialized (so they
   * cost no memory) and counted. Resolves: a caller that does not await would turn a rejection into a crash.
   */
  private overflow(input: unknown): Promise<void> {
    const n = isArrayInput(input) ? input.length : 1;
    this.counters.linesRead += n;
    this.counters.overflowRecords += n;
    if (!this.warnedOverflow) {
      // Once per incarnation: the counter carries the rest.
      this.warnedOverflow = true;
      this.notice(
        "warn",
        `emit() dropped ${n === 1 ? "a record" : `${n} records`}: ${this.parkedRecords} records (${this.parkedBytes} bytes of JSON) ` +
          `already wait for credit from emit() calls that were not awaited; await emit() to wait for the host (counted as overflowRecords)`,
      );
    }
    return RESOLVED;
  }

  private pushLine(json: string | undefined): void {
    if (json !== undefined) this.channel.push(json);
  }

  private serializeAll(input: readonly unknown[], from: number): string[] {
    const out: string[] = [];
    for (let i = from; i < input.length; i++) {
      const json = this.serialize(input[i]);
      if (json !== undefined) out.push(json);
    }
    return out;
  }

  /** One record or line → JSON, or `undefined` when it is skipped (blank) or dropped (counted). */
  private serialize(input: unknown): string | undefined {
    this.counters.linesRead++;
    let json: string;
    try {
      if (typeof input === "string") {
        const parsed = this.parser(input);
        if (parsed.blank) {
          this.counters.blankLines++;
          return undefined;
        }
        if (parsed.droppedKeys !== undefined) this.counters.droppedKeys += parsed.droppedKeys;
        // What the parse function returned may not make a record (a BigInt, a cycle, a toJSON that throws): the line is
        // still shipped, as a plain message with a parse error, as a line it could not parse is.
        let error = parsed.error;
        let text: string | undefined;
        if (parsed.fields !== undefined) {
          try {
            text = JSON.stringify(buildRecord(parsed, this.ctx));
          } catch {
            text = undefined;
          }
          if (text === undefined || text.charCodeAt(0) !== 123 /* { */) {
            text = undefined;
            error = "invalid_result";
          }
        }
        text ??= JSON.stringify(buildRecord(error === parsed.error ? parsed : { line: parsed.line, fields: undefined, error }, this.ctx));
        if (error !== undefined) this.counters.parseErrors++;
        json = text;
      } else if (typeof input === "object" && input !== null && !Array.isArray(input)) {
        const fields = recordFields(input);
        if (typeof fields === "string") return this.invalid(fields);
        // An object is read like a parsed JSON line (same extraction, same enrichment) whose text is empty. An Error in
        // a top-level field ships as write() ships it, not as the {} JSON makes of it.
        json = JSON.stringify(buildRecord({ line: "", fields: withErrorsAsJson(fields) }, this.ctx));
      } else {
        return this.invalid(`expected a record object or a string, got ${describe(input)}`);
      }
    } catch (error) {
      return this.invalid(`the record cannot be serialized: ${errorText(error)}`);
    }
    // The host drops a line that is not a JSON object: refuse it here, counted, instead of sending it. Only a
    // `toJSON` function among the fields (in what a toJSON or a `parse` function returned) can make it something else.
    if (typeof json !== "string" || json.charCodeAt(0) !== 123 /* { */) {
      return this.invalid("the record's JSON is not an object (a `toJSON` function among its fields?)");
    }
    // One over the record limit (MAX_RECORD_BYTES) is the channel's to drop: counted as oversizedRecords, as for every kind of source.
    return json;
  }

  private invalid(reason: string): undefined {
    this.counters.invalidRecords++;
    if (!this.warnedInvalid) {
      // Once per incarnation: the counter carries the rest.
      this.warnedInvalid = true;
      this.notice("warn", `emit() dropped a record: ${reason} (counted as invalidRecords)`);
    }
    return undefined;
  }

  /** The collector's own log: rate-limited, and never throws into the function whatever it is given. */
  sendLog(level: LogLevelName, message: unknown, fields?: unknown): void {
    const now = Date.now();
    const window = Math.floor(now / 1000);
    if (window !== this.logWindow) {
      this.logWindow = window;
      this.logsInWindow = 0;
    }
    if (++this.logsInWindow > LOGS_PER_SECOND) {
      this.counters.logsDropped++;
      return;
    }
    this.notice(level, message, fields);
  }

  /**
   * Send a LOG frame. The runtime's own warnings come here directly: each is sent once or a few times per
   * incarnation, and must not be lost to a function that logs at the rate limit.
   */
  notice(level: LogLevelName, message: unknown, fields?: unknown): void {
    this.counters.logs++;
    let text = safeText(message);
    if (text.length > MAX_LOG_MESSAGE) text = `${text.slice(0, MAX_LOG_MESSAGE)}…`;
    let extra: unknown;
    if (fields !== undefined) {
      try {
        const s = JSON.stringify(fields);
        extra = s === undefined ? undefined : s.length > MAX_LOG_FIELDS_BYTES ? { truncated: true } : (JSON.parse(s) as unknown);
      } catch {
        extra = { unserializable: true };
      }
    }
    this.channel.send(FrameType.LOG, extra === undefined ? { level, message: text } : { level, message: text, fields: extra });
  }
}

type LogLevelName = "debug" | "info" | "warn" | "error";

/**
 * What JSON.stringify would make of an emitted object, as record fields: the result of its `toJSON` when it has
 * one (a Date, a class with its own JSON form). Otherwise why it is not a record: a `toJSON` that returns a string
 * or an array, or a Map, Set, WeakMap, WeakSet or Promise (JSON sees none of their contents: an empty record).
 */
function recordFields(input: object): Record<string, unknown> | string {
  let value: unknown = input;
  const toJSON = (input as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") {
    value = toJSON.call(input, "");
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return `its toJSON() returned ${describe(value)}, not a record object`;
    }
  }
  const opaque = opaqueObject(value as object);
  if (opaque !== undefined) return `expected a record object, got ${opaque}`;
  return value as Record<string, unknown>;
}

/** Import the module and check that its default export is a defineCollector() definition. */
async function loadDefinition(href: string): Promise<CollectorDefinition<unknown>> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(href)) as Record<string, unknown>;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e?.code === "ERR_UNKNOWN_FILE_EXTENSION") {
      throw new Error(
        `cannot load collector module ${href}: Node cannot run it as it is. Compile it to JavaScript, or give the ScriptSource ` +
          '`execArgv: ["--import", <file URL of tsx\'s loader>]` (resolve it with createRequire(import.meta.url).resolve("tsx"))',
        { cause: error },
      );
    }
    throw new Error(`cannot load collector module ${href}: ${errorText(e)}`, { cause: error });
  }
  const definition = mod["default"];
  if (!isCollectorDefinition(definition)) {
    throw new Error(
      `collector module ${href} must \`export default defineCollector(async ({ emit, signal, options, log }) => { … })\` ` +
        `(from "child-log-agg/collector"); its default export is ${describe(definition)}`,
    );
  }
  return definition;
}

/** `Array.isArray`, for what a collector hands to emit(): a revoked Proxy is one (bad) record, not a throw. */
function isArrayInput(input: unknown): input is unknown[] {
  try {
    return Array.isArray(input);
  } catch {
    return false;
  }
}

/** An Error's stack, if it can be read. */
function stackOf(error: unknown): string | undefined {
  try {
    return error instanceof Error && typeof error.stack === "string" ? error.stack : undefined;
  } catch {
    return undefined;
  }
}

/** What a collector function threw, as its FATAL says it: never throws (see errorText). */
function thrownText(error: unknown): string {
  try {
    if (error instanceof Error) return `${safeText(error.name)}: ${errorText(error)}`;
  } catch {
    return `Error: ${errorText(error)}`;
  }
  try {
    return `non-error thrown: ${describe(error)}`;
  } catch {
    return "non-error thrown: a value that cannot be shown";
  }
}

/** Resolves after `ms`, or at once through the returned `cancel`. */
function delay(ms: number): { promise: Promise<false>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** Wait for `p` at most `ms`; true when it settled in time. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  const d = delay(ms);
  const settled = await Promise.race([p.then(() => true as const), d.promise]);
  d.cancel();
  return settled;
}

export async function runScript(spec: ScriptSpec, channel: ChildChannel): Promise<CollectorRun> {
  // Before the user's module is loaded: its top level may block too.
  startOrphanWatchdog();
  const definition = await loadDefinition(spec.module);
  const emitter = new ScriptEmitter(spec, channel, definition);
  const controller = new AbortController();
  const graceMs = spec.killAfterMs;
  let stopping = false;
  type Exit = Awaited<CollectorRun["done"]>;
  let settleDone!: (exit: Exit) => void;
  const done = new Promise<Exit>((resolve) => {
    settleDone = resolve;
  });

  const cursors = await openCursors(spec, channel);
  emitter.onCursor = cursors.mark;

  const context: CollectorContext<unknown> = {
    emit: emitter.emit as CollectorContext<unknown>["emit"],
    signal: controller.signal,
    options: spec.options ?? {},
    log: emitter.log,
    name: spec.name,
    cursor: cursors.loaded,
    commit: emitter.commit,
  };

  const lifecycle = async (): Promise<void> => {
    let failure: { error: unknown } | undefined;
    try {
      await definition.run(context);
    } catch (error) {
      failure = { error };
    }
    // Calls the function did not await still wait for credit: give them the grace period, then count the rest.
    if (!(await within(emitter.idle(), graceMs))) emitter.close();
    if (definition.close !== undefined) {
      try {
        const closed = within(Promise.resolve(definition.close(failure?.error)), graceMs);
        if (!(await closed)) emitter.notice("warn", `close() did not finish within ${graceMs} ms`);
      } catch (error) {
        emitter.notice("warn", `close() threw: ${thrownText(error)}`);
      }
    }
    emitter.close();
    channel.flush();
    if (stopping) {
      // A throw after abort (an aborted fetch, typically) is how many functions end: not a crash.
      settleDone({ code: 0, signal: null });
    } else if (failure !== undefined) {
      const e = failure.error;
      emitter.notice("error", "the collector function threw", { error: { message: thrownText(e), stack: stackOf(e) } });
      settleDone({ code: 1, signal: null, error: `the collector function threw ${thrownText(e)}` });
    } else {
      settleDone({
        code: 0,
        signal: null,
        error: "the collector function returned before the source was stopped (it should run until `signal` aborts)",
      });
    }
  };

  // Start after main has sent READY and registered this run for credit: a credit that arrived in between would
  // otherwise be missed and leave emit() waiting forever. setImmediate runs before any further channel input.
  const finished = new Promise<void>((resolve) => {
    setImmediate(() => {
      lifecycle()
        .catch((error: unknown) => settleDone({ code: 1, signal: null, error: `script collector failed: ${thrownText(error)}` }))
        .finally(resolve);
    });
  });

  return {
    pause() {
      // Nothing to stop reading: emit() itself parks when credit is spent.
    },
    resume() {
      emitter.resume();
    },
    done,
    async stop(killAfterMs: number) {
      stopping = true;
      controller.abort(new Error("the source is stopping"));
      emitter.releasePushed();
      if (!(await within(finished, killAfterMs))) {
        emitter.notice("warn", `the collector function did not return within ${killAfterMs} ms of the abort signal`);
        emitter.close();
      }
      channel.flush();
    },
    ack(seq: number) {
      cursors.ack(seq);
    },
    async close() {
      await cursors.close();
    },
    counters() {
      return { ...emitter.counters };
    },
  };
}

/**
 * The committed cursors of a script collector: each waits, marked with the seq the next record gets, until the host's
 * ACK says every record below that seq is settled; the newest such cursor goes to the CheckpointStore.
 */
async function openCursors(
  spec: ScriptSpec,
  channel: ChildChannel,
): Promise<{ loaded: unknown; mark: (json: string) => void; ack: (seq: number) => void; close: () => Promise<void> }> {
  if (spec.checkpointDir === undefined) return { loaded: undefined, mark: () => {}, ack: () => {}, close: async () => {} };
  // Locked at its first cursor write: a script that never commits takes no lock, and shares nothing.
  const store = new CheckpointStore({ dir: spec.checkpointDir, source: spec.name, flushIntervalMs: spec.checkpointIntervalMs, lock: "write" });
  store.on("error", (error) => channel.send(FrameType.LOG, { level: "error", code: error.code, message: error.message }));
  await store.load();
  /** Committed cursors not yet settled. */
  const pending = new PendingCursors();
  const write = (json: string | undefined): void => {
    if (json !== undefined) store.setCursor(json);
  };
  return {
    loaded: store.cursor,
    mark(json) {
      write(pending.add(channel.nextSeq, json));
    },
    ack(seq) {
      write(pending.settle(seq));
    },
    close: async () => {
      await store.close();
    },
  };
}
