// Human-readable (or JSON-lines) output to a stream the user chose: for quickstarts and local development.
//
// The library itself never prints. This sink writes only because the user added it, to `options.stream`
// (`process.stdout` is looked up only when no stream was given).
import type { Writable } from "node:stream";
import type { LogLevel, LogRecord } from "../record.js";
import type { Batch, SendContext, SendResult, Sink, SinkLifecycleContext, SinkMetrics } from "./sink.js";
import { Outcome } from "./sink.js";
import { InvalidOptionError, SinkError } from "../errors.js";
import { checkName, checkObject } from "../options.js";
import { checkKeys, optionKeys } from "../util/validate.js";
import { describe } from "../pipeline/serialize.js";
import { checkAborted } from "./abort.js";

export type ConsoleFormat = "pretty" | "json";

export interface ConsoleSinkOptions {
  /** Unique sink name. */
  name: string;
  /** `"pretty"`: `HH:MM:SS.mmm LEVEL [source] message`; `"json"`: the canonical JSON line of each record. @default "pretty" */
  format?: ConsoleFormat;
  /** Where to write. The sink never ends it. @default process.stdout */
  stream?: Writable;
  /**
   * ANSI colors for levels (pretty format only).
   * @default the stream's own answer (`hasColors()` of a TTY, which honours NO_COLOR / FORCE_COLOR), else false
   */
  colors?: boolean;
  /** Clock of the pretty timestamp. @default "local" */
  timeZone?: "local" | "utc";
}

interface ResolvedConsoleOptions {
  format: ConsoleFormat;
  stream: Writable;
  colors: boolean;
  utc: boolean;
}

const LEVEL_TEXT: Record<LogLevel, string> = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO ",
  warn: "WARN ",
  error: "ERROR",
  fatal: "FATAL",
};
const LEVEL_COLOR: Record<LogLevel, string> = {
  trace: "\x1b[90m",
  debug: "\x1b[36m",
  info: "\x1b[32m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
  fatal: "\x1b[1;37;41m",
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
const SOURCE_COLOR = "\x1b[35m";
// C0 controls (but tab and newline), DEL and C1: a log line must not be able to drive the user's terminal.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * Writes each batch as one string. When the stream's buffer is full (`write()` returned false) the send
 * waits for `drain` before answering, so a slow terminal or pipe slows the pipeline down instead of
 * buffering without bound. Written text is the stream's from then on: an abort during that wait answers
 * "delivered" at once (retrying would print the lines twice).
 *
 * While the sink is in use it listens for the stream's `error` (an EPIPE on a closed pipe would otherwise
 * crash the host) and answers later sends with a rejection naming the error.
 */
export class ConsoleSink implements Sink {
  readonly name: string;
  private readonly options: ResolvedConsoleOptions;
  private streamError: Error | undefined;
  /** In use: sends listen to the stream's `error`. */
  private listening = false;
  /** Our `error` listener is on the stream (it can stay after close() while the stream still holds our text). */
  private attached = false;
  private sendCount = 0;
  private recordCount = 0;
  private byteCount = 0;
  private drainWaits = 0;

  constructor(options: ConsoleSinkOptions) {
    this.options = resolveConsoleOptions(options);
    this.name = options.name;
  }

  metrics(): SinkMetrics {
    return { sends: this.sendCount, records: this.recordCount, bytes: this.byteCount, drain_waits: this.drainWaits };
  }

  async send(batch: Batch, ctx?: SendContext): Promise<SendResult> {
    this.sendCount++;
    const signal = ctx?.signal;
    checkAborted(this.name, signal);
    const stream = this.options.stream;
    this.listen();
    const broken = this.streamError ?? (stream.destroyed || stream.writableEnded ? new Error("stream closed") : undefined);
    if (broken !== undefined) return this.brokenOutcome(broken);
    if (batch.length === 0) return Outcome.delivered;
    const text = this.options.format === "json" ? batch.json.join("\n") + "\n" : this.pretty(batch);
    const ok = stream.write(text);
    this.recordCount += batch.length;
    this.byteCount += Buffer.byteLength(text);
    if (!ok) {
      this.drainWaits++;
      await waitForDrain(stream, signal);
      // The stream failed while holding our text: it is lost, and saying so beats a silent "delivered".
      if (this.streamError !== undefined) return this.brokenOutcome(this.streamError);
    }
    return Outcome.delivered;
  }

  /**
   * Stops listening to the stream, once it holds none of our text. Never ends it (it is usually `process.stdout`).
   * Calling it again is a no-op.
   */
  close(_ctx?: SinkLifecycleContext): void {
    if (!this.listening) return;
    this.listening = false;
    const stream = this.options.stream;
    // Text a send handed over (one that stop()'s deadline cut short answered "delivered") may still wait in the
    // stream: an error while it is flushed (EPIPE from a reader that went away) must still find a listener, or it
    // would end the host. So the listener goes when the stream has flushed, finished or closed.
    if (stream.writableLength === 0 || stream.destroyed) {
      this.detach();
      return;
    }
    const done = (): void => {
      stream.off("drain", done);
      stream.off("finish", done);
      stream.off("close", done);
      this.detach();
    };
    stream.on("drain", done);
    stream.on("finish", done);
    stream.on("close", done);
  }

  private readonly onStreamError = (error: Error): void => {
    this.streamError = error;
  };

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    if (this.attached) return;
    this.attached = true;
    this.options.stream.on("error", this.onStreamError);
  }

  /** Remove our `error` listener, unless the sink is in use again. */
  private detach(): void {
    if (this.listening || !this.attached) return;
    this.attached = false;
    this.options.stream.off("error", this.onStreamError);
  }

  private brokenOutcome(error: Error): SendResult {
    // A destroyed stream never comes back: reject (dead letter or counted drop) rather than retry forever.
    const code = (error as { code?: unknown }).code;
    const reason = typeof code === "string" ? `stream_${code}` : "stream_closed";
    return Outcome.reject(
      reason,
      new SinkError("ERR_SINK_SEND", `ConsoleSink "${this.name}": cannot write: ${error.message}`, {
        sink: this.name,
        cause: error,
      }),
    );
  }

  private pretty(batch: Batch): string {
    const records = batch.records;
    const sources = batch.sources;
    const { colors, utc } = this.options;
    let out = "";
    for (let i = 0; i < records.length; i++) {
      out += formatPretty(records[i]!, sources[i], colors, utc);
    }
    return out;
  }
}

/** One pretty line (with its `\n`); exported for tests and for users who build their own console sink. */
export function formatPretty(record: LogRecord, source: string | undefined, colors: boolean, utc = false): string {
  const time = clock(record["@timestamp"], utc);
  const level = record.log?.level;
  // Own keys only: a level a record made up ("constructor") must not find Object.prototype's.
  const levelText = typeof level === "string" && Object.hasOwn(LEVEL_TEXT, level) ? LEVEL_TEXT[level] : "-    ";
  const from = source ?? record.service?.name;
  let message = typeof record.message === "string" ? record.message : String(record.message);
  message = message.replace(CONTROL, controlEscape);
  // Continuation lines (stack traces) are indented so they read as part of the record.
  if (message.includes("\n")) message = message.replace(/\r?\n/g, "\n    ");
  if (!colors) return `${time} ${levelText}${from === undefined ? "" : ` [${from}]`} ${message}\n`;
  const color = typeof level === "string" && Object.hasOwn(LEVEL_COLOR, level) ? LEVEL_COLOR[level] : "";
  const head = `${DIM}${time}${RESET} ${color}${levelText}${RESET}`;
  return `${head}${from === undefined ? "" : ` ${SOURCE_COLOR}[${from}]${RESET}`} ${message}\n`;
}

function clock(timestamp: string, utc: boolean): string {
  const d = new Date(timestamp);
  if (Number.isNaN(d.getTime())) return "??:??:??.???";
  const h = utc ? d.getUTCHours() : d.getHours();
  const m = utc ? d.getUTCMinutes() : d.getMinutes();
  const s = utc ? d.getUTCSeconds() : d.getSeconds();
  const ms = utc ? d.getUTCMilliseconds() : d.getMilliseconds();
  return `${pad2(h)}:${pad2(m)}:${pad2(s)}.${String(ms).padStart(3, "0")}`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function controlEscape(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
}

/** Resolves on `drain`, or when the stream closes or errors, or at once when `signal` aborts. */
function waitForDrain(stream: Writable, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      stream.off("error", done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
    stream.on("error", done);
    signal?.addEventListener("abort", done, { once: true });
  });
}

const CONSOLE_KEYS = optionKeys<ConsoleSinkOptions>()(["name", "format", "stream", "colors", "timeZone"]);

function resolveConsoleOptions(options: ConsoleSinkOptions): ResolvedConsoleOptions {
  if (options === undefined) throw new InvalidOptionError("Expected `options` to be an object, got `undefined`");
  checkObject("options", options);
  checkKeys("", options, CONSOLE_KEYS);
  checkName("name", options.name);
  const format = options.format ?? "pretty";
  if (format !== "pretty" && format !== "json") {
    throw new InvalidOptionError(`Expected \`format\` to be "pretty" or "json", got ${describe(format)}`);
  }
  const given = options.stream;
  if (given !== undefined && (given === null || typeof (given as Writable).write !== "function" || typeof (given as Writable).on !== "function")) {
    throw new InvalidOptionError(`Expected \`stream\` to be a Writable stream, got ${describe(given)}`);
  }
  if (options.colors !== undefined && typeof options.colors !== "boolean") {
    throw new InvalidOptionError(`Expected \`colors\` to be a boolean, got ${describe(options.colors)}`);
  }
  const timeZone = options.timeZone ?? "local";
  if (timeZone !== "local" && timeZone !== "utc") {
    throw new InvalidOptionError(`Expected \`timeZone\` to be "local" or "utc", got ${describe(timeZone)}`);
  }
  const stream = given ?? process.stdout;
  return { format, stream, colors: options.colors ?? streamHasColors(stream), utc: timeZone === "utc" };
}

function streamHasColors(stream: Writable): boolean {
  const tty = stream as Writable & { isTTY?: boolean; hasColors?: () => boolean };
  if (tty.isTTY !== true) return false;
  return typeof tty.hasColors === "function" ? tty.hasColors() : true;
}
