// Joins the lines of one logical event (a Java stack trace, a Python traceback, a Go panic) before parsing, and
// keeps the byte range of the whole event so that a checkpoint never commits half of it.
//
//   push(line, start, end) ─▶ classifier ─▶ START    close the open event, open a new one
//                                        ├▶ CONTINUE append to the open event (limits: maxLines, maxBytes)
//                                        └▶ HOLD     keep the line aside until the next line decides (blank lines
//                                                    inside a Go panic or between chained Python tracebacks)
//   timer (timeoutMs after the last line, its input read to its end) or flush() ─▶ emit what is open
import { InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";
import { MAX_TIMER_MS, checkKeys, optionKeys } from "../util/validate.js";

/** Built-in rules. See {@link MultilineJoiner} for what each one joins. */
export type MultilinePreset = "java" | "python" | "go";

/** Limits shared by presets and custom rules. */
export interface MultilineLimits {
  /**
   * Most lines in one event. The event is emitted (flagged `truncated`) when one more would exceed it, and the
   * line that did not fit opens the next event: nothing is dropped.
   * @default 500
   */
  maxLines?: number;
  /**
   * Most bytes in one event (line terminators included), handled like `maxLines`.
   * @default 1048576 (1 MiB)
   */
  maxBytes?: number;
  /**
   * Emit the open event when no line has arrived for this long. Time the source is held back for credit does not
   * count, nor, for a file, time before it is read to its end: the event's next lines are there, waiting to be read.
   * `0` turns the timer off (only the next event's first line, a limit or `flush()` emits then).
   * @default 1000
   */
  timeoutMs?: number;
}

/** Custom rule, Filebeat style: give exactly one of `startPattern` and `continuePattern`. */
export interface MultilineOptions extends MultilineLimits {
  /** A line matching this starts a new event; any other line continues the open one. */
  startPattern?: string | RegExp;
  /** A line matching this continues the open event; any other line starts a new one. */
  continuePattern?: string | RegExp;
  /** Flags for a pattern given as a string (`"i"`, say); a RegExp brings its own (`g` and `y` are ignored). */
  flags?: string;
  /**
   * Invert the pattern: with `startPattern`, lines that do *not* match start events.
   * @default false
   */
  negate?: boolean;
}

/** A preset with its own limits. */
export interface MultilinePresetOptions extends MultilineLimits {
  preset: MultilinePreset;
}

export type MultilineSpec = MultilinePreset | MultilinePresetOptions | MultilineOptions;

/** One joined event. */
export interface MultilineEvent {
  /** The lines joined with `\n`. */
  text: string;
  /** Offset of the first line's first byte. */
  start: number;
  /** Offset after the last line's terminator: the position a checkpoint commits once the event is acked. */
  end: number;
  lines: number;
  /** The event was cut by `maxLines` or `maxBytes`; the next event continues it. */
  truncated: boolean;
}

export type MultilineHandler = (event: MultilineEvent) => void;

export interface MultilineStats {
  events: number;
  /** Events cut by `maxLines` / `maxBytes`. */
  truncated: number;
  /** Events emitted by the idle timer. */
  timedOut: number;
}

const START = 0;
const CONTINUE = 1;
const HOLD = 2;
type Action = typeof START | typeof CONTINUE | typeof HOLD;

interface Classifier {
  classify(line: string): Action;
  /** The open event was emitted by the timer or flush(): forget any state about it. */
  reset(): void;
}

/**
 * Joins lines into events. Feed every line of one stream, in order, with its byte range; events come out in the
 * same order through `onEvent` and their ranges tile the input (each event's `start` is the previous one's `end`).
 *
 * Presets:
 * - `"java"`: continuation lines start with whitespace (`\tat …`, `\t... 12 more`, `\tSuppressed: …`), or are
 *   `Caused by: …`, or an exception header such as `java.lang.IllegalStateException: boom` (dotted class name ending
 *   in Exception, Error or Throwable). Everything else starts an event.
 * - `"python"`: `Traceback (most recent call last):` continues the line before it (as `logger.exception` writes
 *   it), then indented frame lines, then the unindented exception line `ValueError: …` ends the traceback. Chained
 *   tracebacks stay in the event: blank lines, `During handling of the above exception, another exception
 *   occurred:` / `The above exception was the direct cause of the following exception:`, and the next traceback.
 *   Exception groups (`  + Exception Group Traceback`) run until the first unindented line.
 * - `"go"`: `panic: `, `fatal error: `, `runtime: ` or `SIGQUIT: …` starts a panic block that takes the
 *   `[signal …]` line, `goroutine N […]:` headers, function lines `pkg.fn(…)`, indented file lines, `created by …`,
 *   register dumps, blank lines between goroutines, and a final `exit status N`.
 *
 * Blank lines that end up outside an event (a blank line after a Go panic that nothing follows) are emitted as their
 * own one-line events, so offsets stay contiguous; a collector skips them as blank.
 *
 * Timing: the idle flush runs on a `setTimeout` (unref'd, so it never keeps a child alive) armed when an event opens
 * and re-armed from the time of the last line, so tests drive it with `vi.useFakeTimers()` and
 * `vi.advanceTimersByTime()`. `onEvent` is then called from the timer. Call {@link close} when the stream ends.
 * Time the input spends held back (its collector out of credit, between {@link pauseIdle} and {@link resumeIdle}) is
 * not idle time: the event's next lines are waiting to be read, and must not be cut off it. Nor is time the input
 * spends being read when it has more than has arrived (`reading`, say a file not read to its end: the read after a
 * resume, or of the next chunk, can take longer than `timeoutMs` on a busy host).
 */
export class MultilineJoiner {
  readonly stats: MultilineStats = { events: 0, truncated: 0, timedOut: 0 };
  readonly #onEvent: MultilineHandler;
  readonly #classifier: Classifier;
  readonly #maxLines: number;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  #open = false;
  #text = "";
  #start = 0;
  #end = 0;
  #lines = 0;
  #bytes = 0;
  #held: { line: string; start: number; end: number }[] = [];
  /** Bytes of the held lines (terminators included). */
  #heldBytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The timer found the event due and looks once more after the input's turn (see #timerFired). */
  #recheck: ReturnType<typeof setImmediate> | undefined;
  #rechecked = false;
  #lastPush = 0;
  /** pauseIdle(): the timer does not emit (see Timing). */
  #idlePaused = false;
  readonly #reading: (() => boolean) | undefined;
  #closed = false;
  readonly #onTimer = (): void => this.#timerFired();

  /**
   * `reading`, asked when the timer is due: true while the input has more to read right now (its next lines are on
   * their way, not late). The event then waits, and is idle `timeoutMs` after its last line or the last such answer.
   */
  constructor(spec: MultilineSpec, onEvent: MultilineHandler, optionName = "multiline", reading?: () => boolean) {
    if (typeof onEvent !== "function") {
      throw new InvalidOptionError(`Expected \`onEvent\` to be a function, got ${describe(onEvent)}`);
    }
    const { classifier, limits } = resolveSpec(spec, optionName);
    this.#classifier = classifier;
    this.#maxLines = checkInt(limits.maxLines ?? 500, 1, `${optionName}.maxLines`);
    this.#maxBytes = checkInt(limits.maxBytes ?? 1024 * 1024, 1, `${optionName}.maxBytes`);
    this.#timeoutMs = checkInt(limits.timeoutMs ?? 1000, 0, `${optionName}.timeoutMs`);
    this.#onEvent = onEvent;
    this.#reading = reading;
  }

  /** True while lines are waiting to be emitted. */
  get pending(): boolean {
    return this.#open || this.#held.length > 0;
  }

  /** Offset of the first line not emitted yet (the open event's, or a held line's), or undefined when none is. */
  get openStart(): number | undefined {
    if (this.#open) return this.#start;
    return this.#held.length > 0 ? this.#held[0]!.start : undefined;
  }

  /** Feed the next line: its text (no terminator), the offset of its first byte, the offset after its terminator. */
  push(line: string, start: number, end: number): void {
    if (this.#timeoutMs > 0) this.#lastPush = Date.now();
    const action = this.#classifier.classify(line);
    if (this.#open && action === HOLD) {
      // Held lines join the open event if a continuation comes. Past the event's limits they could not, so it ends
      // here: blank lines that keep coming after a `panic:` must not pile up without bound.
      if (this.#lines + this.#held.length + 1 > this.#maxLines || this.#bytes + this.#heldBytes + (end - start) > this.#maxBytes) {
        this.#emit(false);
        this.#emitHeld();
        this.#openWith(line, start, end);
        return;
      }
      this.#held.push({ line, start, end });
      this.#heldBytes += end - start;
      return;
    }
    if (this.#open && action === CONTINUE) {
      if (this.#held.length > 0) {
        const held = this.#held;
        this.#held = [];
        this.#heldBytes = 0;
        for (const h of held) this.#append(h.line, h.start, h.end);
      }
      this.#append(line, start, end);
      return;
    }
    if (this.#open) this.#emit(false);
    this.#emitHeld();
    this.#openWith(line, start, end);
  }

  /** Emit everything pending now (end of input, shutdown, or an idle partial line in the tailer). */
  flush(): void {
    if (this.#open) this.#emit(false);
    this.#emitHeld();
    this.#classifier.reset();
  }

  /** The input is held back: the idle timer stops counting until resumeIdle(). */
  pauseIdle(): void {
    this.#idlePaused = true;
  }

  /** The input is read again: the open event gets a full `timeoutMs` from now. */
  resumeIdle(): void {
    if (!this.#idlePaused) return;
    this.#idlePaused = false;
    if (this.#timeoutMs === 0) return;
    this.#lastPush = Date.now();
    if (this.#timer === undefined && this.pending && !this.#closed) {
      this.#timer = setTimeout(this.#onTimer, this.#timeoutMs);
      this.#timer.unref?.();
    }
  }

  /** Flush and stop the timer. Lines pushed afterwards are still joined, but the timer is not armed again. */
  close(): void {
    this.#shut();
    this.flush();
  }

  /**
   * Close without emitting what is pending: its lines are read again from a checkpoint that never passed them (a
   * file collector stopped while its input was held back, whose open event would ship cut short).
   */
  abandon(): void {
    this.#shut();
    this.#open = false;
    this.#text = "";
    this.#held = [];
    this.#heldBytes = 0;
    this.#classifier.reset();
  }

  /** No timer any more, and none armed again. */
  #shut(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#recheck !== undefined) clearImmediate(this.#recheck);
    this.#recheck = undefined;
  }

  #openWith(line: string, start: number, end: number): void {
    this.#open = true;
    this.#text = line;
    this.#start = start;
    this.#end = end;
    this.#lines = 1;
    this.#bytes = end - start;
    if (this.#timer === undefined && this.#timeoutMs > 0 && !this.#closed) {
      this.#timer = setTimeout(this.#onTimer, this.#timeoutMs);
      this.#timer.unref?.();
    }
  }

  #append(line: string, start: number, end: number): void {
    if (this.#lines + 1 > this.#maxLines || this.#bytes + (end - start) > this.#maxBytes) {
      this.#emit(true);
      this.#openWith(line, start, end);
      return;
    }
    // String concatenation builds a rope in V8: no copying per line, one flatten when the event is used.
    this.#text += "\n" + line;
    this.#end = end;
    this.#lines++;
    this.#bytes += end - start;
  }

  #emit(truncated: boolean): void {
    const event: MultilineEvent = { text: this.#text, start: this.#start, end: this.#end, lines: this.#lines, truncated };
    this.#open = false;
    this.#text = "";
    this.stats.events++;
    if (truncated) this.stats.truncated++;
    this.#onEvent(event);
  }

  #emitHeld(): void {
    if (this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const h of held) {
      this.stats.events++;
      this.#onEvent({ text: h.line, start: h.start, end: h.end, lines: 1, truncated: false });
    }
  }

  #timerFired(): void {
    this.#timer = undefined;
    this.#recheck = undefined;
    // Paused, resumeIdle() arms it again.
    if (!this.pending || this.#closed || this.#idlePaused) {
      this.#rechecked = false;
      return;
    }
    const now = Date.now();
    // Still reading the input: the event's next lines may be in what is being read. Its idle time starts again.
    if (this.#reading?.() === true) this.#lastPush = now;
    const idle = now - this.#lastPush;
    if (idle >= this.#timeoutMs) {
      // Timers run before input is read in each turn of the event loop: a process that waited for a CPU (or was
      // busy) finds its timer overdue while the event's next lines may already wait in its pipe. A late timer looks
      // once more after they were read (an immediate runs after the loop polled for input).
      if (idle > this.#timeoutMs && !this.#rechecked) {
        this.#rechecked = true;
        this.#recheck = setImmediate(this.#onTimer);
        this.#recheck.unref?.();
        return;
      }
      this.#rechecked = false;
      this.stats.timedOut++;
      this.flush();
      return;
    }
    this.#rechecked = false;
    this.#timer = setTimeout(this.#onTimer, this.#timeoutMs - idle);
    this.#timer.unref?.();
  }
}

function checkInt(value: unknown, min: number, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new InvalidOptionError(`Expected \`${name}\` to be an integer of at least ${min}, got ${describe(value)}`);
  }
  if (name.endsWith("Ms") && value > MAX_TIMER_MS) {
    throw new InvalidOptionError(`Expected \`${name}\` to be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest delay Node's timers honour), got ${describe(value)}`);
  }
  return value;
}

const RULE_KEYS = optionKeys<MultilineOptions>()(["startPattern", "continuePattern", "flags", "negate", "maxLines", "maxBytes", "timeoutMs"]);
const PRESET_KEYS = optionKeys<MultilinePresetOptions>()(["preset", "maxLines", "maxBytes", "timeoutMs"]);

function resolveSpec(spec: MultilineSpec, name: string): { classifier: Classifier; limits: MultilineLimits } {
  if (spec === "java" || spec === "python" || spec === "go") return { classifier: presetClassifier(spec, name), limits: {} };
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new InvalidOptionError(
      `Expected \`${name}\` to be "java", "python", "go", { preset } or { startPattern | continuePattern }, got ${describe(spec)}`,
    );
  }
  if ("preset" in spec) {
    checkKeys(name, spec, PRESET_KEYS);
    return { classifier: presetClassifier(spec.preset, `${name}.preset`), limits: spec };
  }
  // A misspelled key (`flag`, `maxline`) would be a rule other than the one meant, without a word.
  checkKeys(name, spec, RULE_KEYS);
  const { startPattern, continuePattern } = spec;
  if ((startPattern === undefined) === (continuePattern === undefined)) {
    throw new InvalidOptionError(
      `Expected \`${name}\` to have exactly one of \`startPattern\` and \`continuePattern\`, got ${
        startPattern === undefined ? "neither" : "both"
      }`,
    );
  }
  const negate = spec.negate ?? false;
  if (typeof negate !== "boolean") throw new InvalidOptionError(`Expected \`${name}.negate\` to be a boolean, got ${describe(negate)}`);
  const isStart = startPattern !== undefined;
  const re = compile((startPattern ?? continuePattern)!, `${name}.${isStart ? "startPattern" : "continuePattern"}`, spec.flags, `${name}.flags`);
  return { classifier: new PatternClassifier(re, isStart, negate), limits: spec };
}

function compile(pattern: string | RegExp, name: string, flags: unknown, flagsName: string): RegExp {
  if (pattern instanceof RegExp) return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ""));
  if (typeof pattern !== "string") throw new InvalidOptionError(`Expected \`${name}\` to be a string or a RegExp, got ${describe(pattern)}`);
  if (flags !== undefined && typeof flags !== "string") throw new InvalidOptionError(`Expected \`${flagsName}\` to be a string, got ${describe(flags)}`);
  try {
    return new RegExp(pattern, flags?.replace(/[gy]/g, ""));
  } catch (error) {
    throw new InvalidOptionError(`Expected \`${name}\` to be a valid regular expression, got ${describe(pattern)}`, { cause: error });
  }
}

function presetClassifier(preset: unknown, name: string): Classifier {
  switch (preset) {
    case "java": return new JavaClassifier();
    case "python": return new PythonClassifier();
    case "go": return new GoClassifier();
    default:
      throw new InvalidOptionError(`Expected \`${name}\` to be "java", "python" or "go", got ${describe(preset)}`);
  }
}

class PatternClassifier implements Classifier {
  constructor(readonly re: RegExp, readonly isStart: boolean, readonly negate: boolean) {}
  classify(line: string): Action {
    const matches = this.re.test(line) !== this.negate;
    if (this.isStart) return matches ? START : CONTINUE;
    return matches ? CONTINUE : START;
  }
  reset(): void {}
}

function startsWithSpace(line: string): boolean {
  const c = line.charCodeAt(0);
  return c === 32 || c === 9;
}

function isBlank(line: string): boolean {
  return line.length === 0 || (startsWithSpace(line) && line.trim().length === 0);
}

// A dotted class name ending in Exception, Error or Throwable, those bare words included (java.lang.Exception).
const JAVA_EXCEPTION_HEADER = /^(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$)/;

class JavaClassifier implements Classifier {
  classify(line: string): Action {
    if (line.length === 0) return START;
    if (startsWithSpace(line)) return line.trim().length === 0 ? START : CONTINUE;
    if (line.startsWith("Caused by:")) return CONTINUE;
    return JAVA_EXCEPTION_HEADER.test(line) ? CONTINUE : START;
  }
  reset(): void {}
}

const PY_NONE = 0;
const PY_TRACEBACK = 1;
const PY_AFTER_EXCEPTION = 2;
const PY_CHAIN = 3;
const PY_GROUP = 4;
const PY_TRACEBACK_HEADER = "Traceback (most recent call last):";
const PY_GROUP_HEADER = /^\s+\+ Exception Group Traceback \(most recent call last\):/;
const PY_CHAIN_LINES = [
  "During handling of the above exception, another exception occurred:",
  "The above exception was the direct cause of the following exception:",
];

class PythonClassifier implements Classifier {
  #state = PY_NONE;
  classify(line: string): Action {
    switch (this.#state) {
      case PY_TRACEBACK:
        if (isBlank(line) || startsWithSpace(line)) return CONTINUE;
        this.#state = PY_AFTER_EXCEPTION; // the unindented `XxxError: message` line closes the traceback
        return CONTINUE;
      case PY_GROUP:
        if (isBlank(line) || startsWithSpace(line)) return CONTINUE;
        return this.#fresh(line);
      case PY_AFTER_EXCEPTION:
        if (isBlank(line)) return HOLD;
        if (PY_CHAIN_LINES.includes(line.trimEnd())) {
          this.#state = PY_CHAIN;
          return CONTINUE;
        }
        return this.#fresh(line);
      case PY_CHAIN:
        if (isBlank(line)) return CONTINUE;
        if (line.startsWith(PY_TRACEBACK_HEADER)) {
          this.#state = PY_TRACEBACK;
          return CONTINUE;
        }
        return this.#fresh(line);
      default:
        if (line.startsWith(PY_TRACEBACK_HEADER)) {
          this.#state = PY_TRACEBACK;
          return CONTINUE; // logger.exception: the traceback belongs to the message line before it
        }
        if (PY_GROUP_HEADER.test(line)) {
          this.#state = PY_GROUP;
          return CONTINUE;
        }
        return START;
    }
  }
  // A line after a finished traceback: a new traceback or group starts an event; anything else is ordinary.
  #fresh(line: string): Action {
    if (line.startsWith(PY_TRACEBACK_HEADER)) this.#state = PY_TRACEBACK;
    else if (PY_GROUP_HEADER.test(line)) this.#state = PY_GROUP;
    else this.#state = PY_NONE;
    return START;
  }
  reset(): void {
    this.#state = PY_NONE;
  }
}

const GO_START = /^(?:panic: |fatal error: |runtime: |SIG[A-Z]+: )/;
const GO_PRELUDE = /^(?:panic: |fatal error: |runtime: |PC=|\[signal )/;
const GO_BLOCK =
  /^(?:goroutine \d+|created by |\[signal |runtime stack:|\.\.\.additional frames elided\.\.\.|PC=|[a-z0-9]{2,6} +0x[0-9a-f]+$|[^\s(]+\(.*\)$)/;
const GO_EXIT = /^exit status \d+$/;

class GoClassifier implements Classifier {
  #inPanic = false;
  #sawGoroutine = false;
  classify(line: string): Action {
    if (!this.#inPanic) {
      if (GO_START.test(line)) this.#enter();
      return START;
    }
    if (isBlank(line)) return HOLD;
    if (startsWithSpace(line)) return CONTINUE;
    if (line.startsWith("goroutine ")) this.#sawGoroutine = true;
    // Before the first goroutine header, `runtime: …` / `fatal error: …` lines are the prelude of one crash.
    if (!this.#sawGoroutine && GO_PRELUDE.test(line)) return CONTINUE;
    if (GO_BLOCK.test(line)) return CONTINUE;
    if (GO_EXIT.test(line)) {
      this.#inPanic = false;
      return CONTINUE;
    }
    this.#inPanic = false;
    if (GO_START.test(line)) this.#enter();
    return START;
  }
  #enter(): void {
    this.#inPanic = true;
    this.#sawGoroutine = false;
  }
  reset(): void {
    this.#inPanic = false;
  }
}
