// Turns caller input into a canonical record + JSON once, at the edge, so nothing downstream can fail to serialize.
import type { LogRecord, LogRecordInput } from "../record.js";
import { normalizeLevel, parseTimestamp } from "../record.js";

export type Serialized = { ok: true; json: string; record: LogRecord } | { ok: false; error: Error };

/**
 * Fill in what an ECS record must have (`@timestamp`, `message`; `host.name` when `hostName` is given), normalize
 * `log.level`, and serialize.
 * A record that cannot be JSON-encoded (cycles, BigInt, a throwing getter or toJSON, a toJSON that returns no
 * object) comes back as `{ ok: false }`; this never throws.
 */
export function serializeRecord(input: LogRecordInput, now?: string, hostName?: string): Serialized {
  try {
    let record = asObject(input);
    // A record's toJSON() decides what it serializes to: apply it first, as JSON.stringify would, so that what is
    // checked and filled in below is what ships. The copy made then is serialized without it.
    const toJSON = (record as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") record = asObject(toJSON.call(record, ""), "toJSON() returned");
    // An Error in a top-level field, before anything reads the fields: one in `@timestamp`, `log.level` or `host` is
    // then an object like any other there (not a string spread into characters, nor a host with an inherited `name`).
    const converted = withErrorsAsJson(record) as LogRecord;
    const copied = converted !== record;
    record = converted;
    const ts = record["@timestamp"];
    const needsTs = typeof ts !== "string" || parseTimestamp(ts) !== ts;
    const needsMessage = typeof record.message !== "string";
    // A text that is no own enumerable field (an Error's, a class's getter) is not what JSON ships: it is copied.
    const hiddenMessage = !needsMessage && !Object.prototype.propertyIsEnumerable.call(record, "message");
    // ECS's dotted key is the level too when there is no nested one (collectors read it so).
    // Not beside a `log` that is no object (a path, say), and not a null.
    const log: unknown = record.log;
    const dotted =
      log === undefined || (isObject(log) && log.level === undefined) ? ((record as Record<string, unknown>)["log.level"] ?? undefined) : undefined;
    const level = dotted ?? record.log?.level;
    const normalized = level === undefined ? undefined : normalizeLevel(level);
    // A word or number it does not know stays as it is, as collectors keep it; an object (which Elasticsearch, where
    // log.level is a keyword, rejects the whole record for) is moved to log.level_raw.
    const levelObject = level !== null && typeof level === "object";
    const needsLevel = dotted !== undefined || (level !== undefined && ((normalized !== undefined && normalized !== level) || levelObject));
    const ownToJSON = typeof (record as { toJSON?: unknown }).toJSON === "function";
    const host = record.host;
    const needsHost = hostName !== undefined && (host === undefined || (typeof host === "object" && host !== null && !Array.isArray(host) && host.name === undefined));
    if (needsTs || needsMessage || hiddenMessage || needsLevel || ownToJSON || needsHost) {
      // Copy rather than mutate the caller's object (a copy's own enumerable fields are what JSON.stringify reads).
      // withErrorsAsJson() copied it already.
      const text = record.message;
      if (!copied) record = { ...record };
      if (hiddenMessage) record.message = text;
      if (ownToJSON) delete (record as { toJSON?: unknown }).toJSON;
      if (needsTs) {
        const parsed = parseTimestamp(ts);
        // One that cannot be read is kept beside the one filled in, as collectors keep it.
        if (parsed === undefined && ts !== undefined && !("@timestamp_raw" in record)) record["@timestamp_raw"] = ts;
        record["@timestamp"] = parsed ?? now ?? new Date().toISOString();
      }
      if (needsMessage) {
        const m: unknown = record.message;
        if (m !== null && typeof m === "object") {
          // An object or array is kept as `message_raw`, as collectors keep it: String() would make it "[object Object]".
          if (!("message_raw" in record)) record["message_raw"] = m;
          record.message = "";
        } else record.message = m === undefined ? "" : String(m);
      }
      if (needsHost) record.host = { ...record.host, name: hostName };
      if (needsLevel) {
        if (dotted !== undefined) delete (record as Record<string, unknown>)["log.level"];
        const log: Record<string, unknown> = { ...record.log };
        if (normalized !== undefined) log.level = normalized;
        else if (levelObject) {
          if (!("level_raw" in log)) log.level_raw = level;
          delete log.level;
        } else log.level = level;
        record.log = log as LogRecord["log"];
      }
    }
    const json = JSON.stringify(record);
    // Anything but an object here would reach sinks that expect one (GELF, pretty console) and fail every send.
    if (typeof json !== "string" || json.charCodeAt(0) !== 0x7b) throw new TypeError("the record did not serialize to a JSON object");
    return { ok: true, json, record };
  } catch (error) {
    // A thrown non-Error may not even convert to a string.
    return { ok: false, error: error instanceof Error ? error : new TypeError("the record could not be serialized") };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * `fields` with each top-level Error as `write()` ships it: `message` as the error's text, any other field as
 * `errorObject()`. The same object when it holds none; a copy otherwise (the caller's object is not changed).
 * Script collectors' `emit()` uses it, so an Error emitted there ships as it does through `write()`.
 */
export function withErrorsAsJson(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value instanceof Error) (out ??= { ...fields })[key] = key === "message" ? errorLine(value) : errorObject(value);
  }
  return out ?? fields;
}

/**
 * An Error as what JSON would ship of it (its `toJSON()`, else its own enumerable fields: an fs error's `errno`,
 * `code`, `syscall`, `path`), plus ECS's `type` (its name), `message` and `stack_trace`.
 */
function errorObject(error: Error): Record<string, unknown> {
  let out: Record<string, unknown> = {};
  try {
    const toJSON = (error as { toJSON?: unknown }).toJSON;
    const own: unknown = typeof toJSON === "function" ? toJSON.call(error, "") : { ...error };
    if (isObject(own)) out = { ...own };
  } catch {
    // A getter or toJSON() that throws: ECS's fields all the same.
  }
  // Each on its own: a getter that throws loses its field only.
  out.type ??= readSafely(() => error.name);
  out.message ??= readSafely(() => error.message);
  const stack = readSafely(() => error.stack);
  if (typeof stack === "string") out.stack_trace ??= stack;
  return out;
}

function readSafely(read: () => unknown): unknown {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function asObject(value: unknown, what = "Expected a record object, got"): LogRecord {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new TypeError(`${what} ${describe(value)}`);
  const opaque = opaqueObject(value);
  if (opaque !== undefined) throw new TypeError(`Expected a record object, got ${opaque}`);
  return value as LogRecord;
}

/**
 * What an object that cannot be a record is (its contents are not what JSON sees: it would ship as an empty record),
 * or undefined for one that can.
 */
export function opaqueObject(value: object): string | undefined {
  if (value instanceof Map || value instanceof Set) return `a ${value instanceof Map ? "Map" : "Set"} (convert it, e.g. with Object.fromEntries)`;
  // Most likely a missing `await`.
  if (value instanceof Promise) return "a Promise (await it first)";
  if (value instanceof WeakMap || value instanceof WeakSet) return `a ${value instanceof WeakMap ? "WeakMap" : "WeakSet"}`;
  return undefined;
}

export function describe(value: unknown): string {
  if (value === null) return "`null`";
  if (Array.isArray(value)) return "an array";
  const t = typeof value;
  if (t === "string") {
    const s = value as string;
    return `\`${JSON.stringify(s.length > 40 ? s.slice(0, 40) + "…" : s)}\` (string)`;
  }
  if (t === "number" || t === "boolean" || t === "bigint") return `\`${String(value)}\` (${t})`;
  if (t === "function") return "a function";
  if (t === "undefined") return "`undefined`";
  return `${t === "object" ? "an object" : t}`;
}

/** `String(error)` ("TypeError: boom"), or what can be read of it when that throws. */
function errorLine(error: Error): string {
  try {
    return String(error);
  } catch {
    // A `name` or `message` getter that throws: the message alone when it can be read.
    const message = readSafely(() => error.message);
    return typeof message === "string" && message !== "" ? message : "Error";
  }
}
