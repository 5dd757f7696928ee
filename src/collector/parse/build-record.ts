// Turns a parsed line into the ECS record that crosses the channel: message, level and timestamp extraction,
// then enrichment. Runs once per line in the child, so it allocates only the record and the objects it must own.
import { normalizeLevel, parseTimestamp, type LogLevel, type LogRecord } from "../../record.js";
import type { ParsedLine } from "./types.js";

/**
 * Per-source (and per-line) facts the collector knows about a line. `buildRecord` keeps no reference to it, so a
 * collector may keep one object per source and update `now` / `offset` before each call.
 */
export interface RecordContext {
  /**
   * Arrival time, used as `@timestamp` when the line carries none. An ISO string (cheapest: compute it once per
   * read chunk) or epoch milliseconds.
   */
  now: string | number;
  /** Source name. Becomes `service.name` unless the line names a service itself. */
  source?: string;
  /** Host name. Becomes `host.name` unless the line names a host itself (a network source relays other hosts). */
  host?: string;
  /** File the line came from → `log.file.path` (authoritative: overrides the line). */
  filePath?: string;
  /**
   * The file's device (`st_dev`, decimal) → `log.file.device_id` (authoritative). With {@link fileInode} it tells a
   * rotated file's successor from it although both had the same path: Elasticsearch's deterministic ids hash them.
   */
  fileDeviceId?: string;
  /** The file's inode (`st_ino`, decimal: it can exceed 2^53) → `log.file.inode` (authoritative). */
  fileInode?: string;
  /** Byte offset of the line (the event's first line) in its file → `log.offset` (authoritative). */
  offset?: number;
  /**
   * Enrichment: fields merged into every record, deeply (objects into objects), winning over the line's own
   * fields. `__proto__` keys are skipped. Nested objects are copied, never shared between records.
   */
  fields?: Readonly<Record<string, unknown>>;
  /** Command output stream → top-level `stream` (as Filebeat and Vector name it). */
  stream?: "stdout" | "stderr";
  /**
   * Level when the line has none.
   * @default "warn" for `stream: "stderr"`, else none (no `log.level`)
   */
  defaultLevel?: LogLevel;
  /**
   * Keep the raw line in `event.original`.
   * @default false
   */
  keepOriginal?: boolean;
}

/**
 * Keys read as the message, in order. The first one holding a string wins (`log` is Docker's json-file key; `@m` and
 * `@mt` Serilog's compact JSON, rendered and template; `Message` .NET's JSON console).
 */
export const MESSAGE_KEYS: readonly string[] = ["message", "msg", "log", "text", "@m", "Message", "@mt"];
/** Keys read as the level, in order, after the ECS forms `"log.level"` (dotted key) and `log: { level }`. */
export const LEVEL_KEYS: readonly string[] = ["level", "lvl", "severity", "loglevel", "levelname", "@l", "Level", "LogLevel"];
/** Keys read as the timestamp, in order. The first one `lineTimestamp` accepts wins. */
export const TIMESTAMP_KEYS: readonly string[] = ["@timestamp", "timestamp", "time", "ts", "t", "date", "@t", "Timestamp"];

/** 2000-01-01T00:00:00Z: an epoch number under a key other than `@timestamp` must come after it to be taken for a time. */
export const PLAUSIBLE_EPOCH_MS = 946_684_800_000;

/**
 * The timestamp a line's key holds, as `parseTimestamp` reads it. A key other than `@timestamp` often holds
 * something else under the same name (a duration `time: 12`, a business `date: "2023-12-31"`, `t: 21.5`, a
 * `yyyymmdd` number): under those keys an epoch number before 2000, and a date without a time of day, are left as
 * the fields they are.
 */
export function lineTimestamp(key: string, value: unknown): string | undefined {
  const iso = parseTimestamp(value);
  if (iso === undefined || key === "@timestamp") return iso;
  if (typeof value === "string") {
    // The usual case first, without trimming or a regex: a date and a `T` time of day (`2024-01-15T10:00:00Z`).
    if (value.length > 10 && value.charCodeAt(4) === 45 && value.charCodeAt(10) > 32) return iso;
    const text = value.trim();
    if (!NUMERIC_TEXT.test(text)) return text.length > 10 ? iso : undefined;
  }
  return Date.parse(iso) >= PLAUSIBLE_EPOCH_MS ? iso : undefined;
}
const NUMERIC_TEXT = /^\d+(?:\.\d+)?$/;

const NESTED_LOG_LEVEL = "\0log.level";
const MAX_MERGE_DEPTH = 32;

/**
 * Build the record for one parsed line (or multiline event).
 *
 * Extraction (only from `parsed.fields`; each consumed key is removed from the record's fields):
 * - `message`: the first of {@link MESSAGE_KEYS} holding a string (a number or boolean under `message` is turned into
 *   a string; a trailing newline under `log` is dropped). None → the whole line is the message (for JSON: the JSON
 *   text), so that a record is never empty.
 * - `log.level`: `"log.level"`, `log.level`, then {@link LEVEL_KEYS}; the first value `normalizeLevel` knows
 *   (words, syslog 0–7, pino 10–60). An unknown value stays in place as a field. Fallbacks: `parsed.level`
 *   (plain parser's sniff), `ctx.defaultLevel`, `"warn"` for stderr.
 * - `@timestamp`: the first of {@link TIMESTAMP_KEYS} that `lineTimestamp` accepts, else `ctx.now`.
 *
 * The remaining fields are kept as they are (nested objects stay nested), with these exceptions that keep the ECS
 * shape valid for Elasticsearch: a string `host` or `service` becomes `{ name }`; any other non-object value under
 * `log`, `host`, `service` or `event` moves to `<key>.original`; an `@timestamp` that did not parse moves to
 * `@timestamp_raw`, a `message` that is an object or array to `message_raw`.
 *
 * Then: `service.name` ← `ctx.source` and `host.name` ← `ctx.host` when the line did not set them; `ctx.fields`
 * merged over everything; `log.file.path`, `log.file.device_id`, `log.file.inode` (in that order, after any other
 * `log.file` keys of the line), `log.offset`, `stream` set from the context; `event.original` when asked;
 * and on a parse failure `error: { type: "parse", message: <reason> }` (as Filebeat's `add_error_key` does).
 */
export function buildRecord(parsed: ParsedLine, ctx: RecordContext): LogRecord {
  const f = parsed.fields;
  let message: string | undefined;
  let level: LogLevel | undefined;
  let timestamp: string | undefined;
  let msgKey: string | undefined;
  let levelKey: string | undefined;
  let tsKey: string | undefined;

  if (f !== undefined) {
    for (let i = 0; i < MESSAGE_KEYS.length; i++) {
      const key = MESSAGE_KEYS[i]!;
      const v = f[key];
      if (typeof v === "string") {
        message = key === "log" ? trimNewline(v) : v;
        msgKey = key;
        break;
      }
      if (key === "message" && (typeof v === "number" || typeof v === "boolean")) {
        message = String(v);
        msgKey = key;
        break;
      }
    }
    const dotted = f["log.level"];
    if (dotted !== undefined && (level = normalizeLevel(dotted)) !== undefined) levelKey = "log.level";
    if (level === undefined) {
      const log = f["log"];
      if (isPlainObject(log) && (level = normalizeLevel(log["level"])) !== undefined) levelKey = NESTED_LOG_LEVEL;
    }
    if (level === undefined) {
      for (let i = 0; i < LEVEL_KEYS.length; i++) {
        const v = f[LEVEL_KEYS[i]!];
        if (v !== undefined && (level = normalizeLevel(v)) !== undefined) {
          levelKey = LEVEL_KEYS[i];
          break;
        }
      }
    }
    for (let i = 0; i < TIMESTAMP_KEYS.length; i++) {
      const v = f[TIMESTAMP_KEYS[i]!];
      if (v !== undefined && (timestamp = lineTimestamp(TIMESTAMP_KEYS[i]!, v)) !== undefined) {
        tsKey = TIMESTAMP_KEYS[i];
        break;
      }
    }
  }

  const record: LogRecord = { "@timestamp": timestamp ?? nowIso(ctx.now), message: message ?? parsed.line };

  if (f !== undefined) {
    for (const key in f) {
      if (key === msgKey || key === levelKey || key === tsKey || key === "__proto__") continue;
      const v = f[key];
      switch (key) {
        case "log":
        case "host":
        case "service":
        case "event": {
          let obj: Record<string, unknown>;
          if (isPlainObject(v)) {
            obj = { ...v }; // the record owns its copy; spread defines own properties, so no prototype is touched
            if (key === "log" && levelKey === NESTED_LOG_LEVEL) delete obj["level"];
            else if (key === "log" && isPlainObject(obj["level"])) {
              // An object where Elasticsearch maps a keyword would get the whole record rejected: moved aside.
              obj["level_raw"] = obj["level"];
              delete obj["level"];
            }
          } else if (typeof v === "string" && (key === "host" || key === "service")) {
            obj = { name: v };
          } else {
            obj = { original: v };
          }
          record[key] = obj;
          break;
        }
        case "@timestamp":
          record["@timestamp_raw"] = v;
          break;
        case "log.level":
          // Not a level (else consumed above): an object would get the record rejected where log.level is a keyword.
          if (isPlainObject(v)) record["log.level_raw"] = v;
          else record[key] = v;
          break;
        case "message":
          record["message_raw"] = v;
          break;
        default:
          record[key] = v;
      }
    }
  }

  level ??= parsed.level ?? ctx.defaultLevel ?? (ctx.stream === "stderr" ? "warn" : undefined);
  if (level !== undefined) ownObject(record, "log")["level"] = level;
  // A line (or the source's `fields`) that names its service or host, nested or with ECS's dotted keys (ecs-logging
  // writes `"service.name"`), keeps it: Elasticsearch reads both spellings as one field, so adding ours would give
  // it two values.
  if (ctx.source !== undefined && record["service.name"] === undefined && ctx.fields?.["service.name"] === undefined) {
    const service = ownObject(record, "service");
    if (service["name"] === undefined) service["name"] = ctx.source;
  }
  if (ctx.host !== undefined && record["host.name"] === undefined && ctx.fields?.["host.name"] === undefined) {
    const host = ownObject(record, "host");
    if (host["name"] === undefined) host["name"] = ctx.host;
  }
  if (parsed.error !== undefined) record["error"] = { type: "parse", message: parsed.error };
  if (ctx.keepOriginal === true) ownObject(record, "event")["original"] = parsed.line;
  if (ctx.fields !== undefined) mergeInto(record, ctx.fields, MAX_MERGE_DEPTH);
  if (ctx.filePath !== undefined || ctx.fileDeviceId !== undefined || ctx.fileInode !== undefined) {
    const log = ownObject(record, "log");
    const file: Record<string, unknown> = isPlainObject(log["file"]) ? { ...log["file"] } : {};
    if (ctx.filePath !== undefined) file["path"] = ctx.filePath;
    if (ctx.fileDeviceId !== undefined) file["device_id"] = ctx.fileDeviceId;
    if (ctx.fileInode !== undefined) file["inode"] = ctx.fileInode;
    log["file"] = file;
  }
  if (ctx.offset !== undefined) ownObject(record, "log")["offset"] = ctx.offset;
  if (ctx.stream !== undefined) record["stream"] = ctx.stream;
  return record;
}

function nowIso(now: string | number): string {
  if (typeof now === "string") return now;
  return Number.isFinite(now) ? new Date(now).toISOString() : new Date().toISOString();
}

function trimNewline(s: string): string {
  let end = s.length;
  if (end > 0 && s.charCodeAt(end - 1) === 10) end--;
  if (end > 0 && s.charCodeAt(end - 1) === 13) end--;
  return end === s.length ? s : s.slice(0, end);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// The record's object under `key`, created when missing. Objects there were copied by buildRecord or made by it.
/**
 * Mark a record that is not a whole line or event, so that a search finds them (`log.flags`, as Filebeat marks
 * them): `"truncated"`, a multiline event cut at its `maxLines`/`maxBytes`; `"split"`, a piece of a line longer than
 * `maxLineBytes`.
 */
export function flagRecord(record: LogRecord, flag: "truncated" | "split"): void {
  const log = ownObject(record, "log");
  const flags = Array.isArray(log["flags"]) ? [...(log["flags"] as unknown[])] : log["flags"] === undefined ? [] : [log["flags"]];
  if (!flags.includes(flag)) flags.push(flag);
  log["flags"] = flags;
}

function ownObject(record: LogRecord, key: "log" | "host" | "service" | "event"): Record<string, unknown> {
  const v = record[key];
  if (isPlainObject(v)) return v;
  const obj: Record<string, unknown> = v === undefined ? {} : { original: v };
  record[key] = obj;
  return obj;
}

/** Enrichment `fields` over `base` (deeply, `fields` winning, as into a record): a new object; neither is changed. */
export function mergeFields(base: Readonly<Record<string, unknown>>, fields: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  mergeInto(out, base, MAX_MERGE_DEPTH);
  if (fields !== undefined) mergeInto(out, fields, MAX_MERGE_DEPTH);
  return out;
}

/** Deep merge, `source` winning. Copies nested objects so records never share (and later mutate) enrichment objects. */
function mergeInto(target: Record<string, unknown>, source: Readonly<Record<string, unknown>>, depth: number): void {
  for (const key of Object.keys(source)) {
    if (key === "__proto__") continue;
    const v = source[key];
    if (isPlainObject(v) && depth > 0) {
      const existing = Object.hasOwn(target, key) ? target[key] : undefined;
      const copy: Record<string, unknown> = isPlainObject(existing) ? { ...existing } : {};
      mergeInto(copy, v, depth - 1);
      target[key] = copy;
    } else {
      target[key] = v;
    }
  }
}
