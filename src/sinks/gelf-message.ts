// Maps an ECS-aligned LogRecord to a GELF 1.1 object by the rules Graylog actually applies (protocols.md §1.2, §4).
//
// Rules (documented in the README's GELF section):
// - `host`: record `host.name`, else the sink's `host` option, else os.hostname().
// - `short_message`: the first non-blank line of `message` (trailing whitespace trimmed); "-" when there is none.
// - `full_message`: the whole `message` when it spans several lines; `error.stack_trace` is appended (or used alone).
// - `timestamp`: epoch seconds with a millisecond fraction; `level`: syslog severity via the level map, always sent.
// - Every other field becomes an additional field: nested objects are flattened with `_` (`log.file.path` →
//   `_log_file_path`), characters outside [A-Za-z0-9_-] become `_`, booleans become "true"/"false", nulls are dropped,
//   arrays and objects nested deeper than `flattenDepth` become JSON text. On a name clash the first field wins.
// - Names Graylog refuses or treats specially get a trailing `_`: `_id` → `_id_`, `_source` → `_source_` (also all,
//   index, type, score, ttl); names starting with `gl2_` become `_gl2x_…`.
import { hostname as osHostname } from "node:os";
import type { LogLevel, LogRecord } from "../record.js";
import { syslogSeverity } from "../record.js";

/** A GELF 1.1 message as sent. */
export interface GelfMessage {
  version: "1.1";
  host: string;
  short_message: string;
  full_message?: string;
  timestamp: number;
  level: number;
  [extra: `_${string}`]: string | number;
}

export interface GelfMappingOptions {
  /** Fallback `host` when a record has no `host.name`. */
  host: string;
  /** Syslog severity per level. */
  levels: Readonly<Record<LogLevel, number>>;
  /** Object levels flattened into `_a_b_c` names; deeper values are sent as JSON text. */
  flattenDepth: number;
}

/** Library default level mapping (protocols.md §1.7, bold column). */
export const DEFAULT_GELF_LEVELS: Readonly<Record<LogLevel, number>> = Object.freeze({
  trace: syslogSeverity("trace"),
  debug: syslogSeverity("debug"),
  info: syslogSeverity("info"),
  warn: syslogSeverity("warn"),
  error: syslogSeverity("error"),
  fatal: syslogSeverity("fatal"),
});

/** Placeholder `short_message` for a record whose message is empty (GELF requires a non-empty one). */
export const EMPTY_SHORT_MESSAGE = "-";

export function defaultGelfMapping(): GelfMappingOptions {
  return { host: osHostname(), levels: DEFAULT_GELF_LEVELS, flattenDepth: 4 };
}

// Names, as Graylog stores them (our leading `_` stripped), that it skips or that would collide with a field the
// message already has: `_id`'s spelling, Elasticsearch metadata, and GELF's own fields. They get a trailing `_`.
const RESERVED = new Set([
  "id",
  "_id",
  "source",
  "all",
  "index",
  "type",
  "score",
  "ttl",
  "timestamp",
  "message",
  "full_message",
  "short_message",
  "level",
  "host",
  "facility",
  "version",
  "streams",
]);
const INVALID_KEY_CHARS = /[^A-Za-z0-9_-]/g;

/** The additional-field name for a flattened key path (without the leading `_` → with it). */
export function gelfFieldName(path: string): string {
  let name = fieldNames.get(path);
  if (name !== undefined) return name;
  name = computeFieldName(path);
  // Records repeat their field paths: remember the translations, within a bound (no growth from random keys).
  if (fieldNames.size >= 10_000) fieldNames.clear();
  fieldNames.set(path, name);
  return name;
}

const fieldNames = new Map<string, string>();

function computeFieldName(path: string): string {
  let name = path.replace(INVALID_KEY_CHARS, "_");
  if (name.length === 0) name = "empty_key";
  if (RESERVED.has(name)) name += "_";
  else if (name.startsWith("gl2_")) name = "gl2x_" + name.slice(4);
  return "_" + name;
}

// Top-level keys consumed by the standard fields.
const HANDLED_TOP = new Set(["@timestamp", "message"]);

/** Build the GELF object for one record. */
export function toGelf(record: LogRecord, o: GelfMappingOptions): GelfMessage {
  const message = typeof record.message === "string" ? record.message : "";
  const hostName = record.host?.name;
  const stack = (record.error as { stack_trace?: unknown } | undefined)?.stack_trace;
  const host = typeof hostName === "string" && hostName.trim().length > 0 ? hostName : o.host;
  const short_message = shortMessage(message);
  const timestamp = gelfTimestamp(record["@timestamp"]);
  const level = levelOf(record, o.levels);
  let full_message: string | undefined;
  if (typeof stack === "string" && stack.length > 0) full_message = message.length > 0 ? `${message}\n${stack}` : stack;
  else if (message.includes("\n") || message.includes("\r")) full_message = message;
  // Literal objects keep a stable key order: standard fields first, extras after.
  const out: GelfMessage =
    full_message === undefined
      ? { version: "1.1", host, short_message, timestamp, level }
      : { version: "1.1", host, short_message, full_message, timestamp, level };
  for (const key of Object.keys(record)) {
    if (HANDLED_TOP.has(key)) continue;
    addField(out, key, record[key], 1, o.flattenDepth, key === "error" || key === "host" ? key : undefined);
  }
  return out;
}

// `skip` names the top-level object whose consumed member (host.name, error.stack_trace) must not be repeated.
function addField(out: GelfMessage, path: string, value: unknown, depth: number, maxDepth: number, skip?: string): void {
  if (value === null || value === undefined) return;
  switch (typeof value) {
    case "string":
      setExtra(out, path, value);
      return;
    case "number":
      if (Number.isFinite(value)) setExtra(out, path, value);
      return;
    case "boolean":
      setExtra(out, path, value ? "true" : "false");
      return;
    case "bigint":
      setExtra(out, path, value.toString());
      return;
    case "object": {
      if (Array.isArray(value) || depth >= maxDepth) {
        setExtra(out, path, JSON.stringify(value));
        return;
      }
      const obj = value as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        if (skip === "host" && k === "name") continue;
        if (skip === "error" && k === "stack_trace" && typeof obj[k] === "string") continue;
        addField(out, `${path}_${k}`, obj[k], depth + 1, maxDepth);
      }
      return;
    }
    default:
      return; // functions and symbols cannot come out of JSON
  }
}

function setExtra(out: GelfMessage, path: string, value: string | number): void {
  const name = gelfFieldName(path) as `_${string}`;
  if (out[name] === undefined) out[name] = value;
}

function shortMessage(message: string): string {
  let start = 0;
  const n = message.length;
  while (start < n) {
    let end = start;
    while (end < n && message.charCodeAt(end) !== 10 && message.charCodeAt(end) !== 13) end++;
    const line = message.slice(start, end).trimEnd();
    if (line.trim().length > 0) return line;
    start = end + 1;
  }
  return EMPTY_SHORT_MESSAGE;
}

function gelfTimestamp(ts: unknown): number {
  const ms = typeof ts === "string" ? Date.parse(ts) : Number.NaN;
  // GELF wants seconds with a fraction; an unparseable timestamp falls back to now rather than to "receive time 0".
  return (Number.isNaN(ms) ? Date.now() : ms) / 1000;
}

function levelOf(record: LogRecord, levels: Readonly<Record<LogLevel, number>>): number {
  // A syslog severity is what GELF's level is: kept as it came (notice stays 5, alert 1), not through log.level's
  // six words.
  const severity = (record.log?.syslog as { severity?: { code?: unknown } } | undefined)?.severity?.code;
  if (typeof severity === "number" && Number.isInteger(severity) && severity >= 0 && severity <= 7) return severity;
  const level = record.log?.level;
  if (level !== undefined && Object.prototype.hasOwnProperty.call(levels, level)) return levels[level];
  return levels.info;
}

/** Marker field set on a message that was shortened to fit a transport limit. */
export const TRUNCATED_FIELD = "_gelf_truncated";

export interface FittedGelf {
  readonly json: string;
  readonly truncated: boolean;
}

// The two fields that may be shortened, in order. Extras are never cut: a message too large without them is rejected.
const SHRINKABLE = ["full_message", "short_message"] as const;
const MAX_SHRINK_STEPS = 16;

/**
 * Serialize `msg`, shrinking it when `sizeOf(json)` (the size on the wire: compressed, chunked…) exceeds `limit`.
 * Rule: shorten `full_message` (dropping it when needed), then `short_message`, each cut ending in "…", and mark the
 * message with `_gelf_truncated: "true"`. Returns undefined when even that does not fit (the caller rejects it).
 */
export function fitGelf(msg: GelfMessage, limit: number, sizeOf: (json: string) => number): FittedGelf | undefined {
  let json = JSON.stringify(msg);
  let size = sizeOf(json);
  if (size <= limit) return { json, truncated: false };
  const copy: Record<string, unknown> = { ...msg, [TRUNCATED_FIELD]: "true" };
  for (const field of SHRINKABLE) {
    for (let step = 0; step < MAX_SHRINK_STEPS; step++) {
      const current = copy[field];
      if (typeof current !== "string") break;
      if (field === "short_message" && current.length <= 1) break;
      // Scale by how far over the limit we are, with a margin so most messages fit after one re-encode.
      const target = Math.floor(current.length * Math.min(0.9, (limit / size) * 0.9)) - 16;
      if (target <= 0) {
        if (field === "full_message") delete copy.full_message;
        else copy.short_message = EMPTY_SHORT_MESSAGE;
      } else {
        copy[field] = cutString(current, target) + "…";
      }
      json = JSON.stringify(copy);
      size = sizeOf(json);
      if (size <= limit) return { json, truncated: true };
      if (target <= 0) break;
    }
  }
  return undefined;
}

/** Cut to at most `n` UTF-16 units without splitting a surrogate pair. */
function cutString(s: string, n: number): string {
  if (s.length <= n) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}
