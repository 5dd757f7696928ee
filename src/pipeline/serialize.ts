// Turns caller input into a canonical record + JSON once, at the edge, so nothing downstream can fail to serialize.
import type { LogRecord, LogRecordInput } from "../record.js";
import { normalizeLevel, parseTimestamp } from "../record.js";

export type Serialized = { ok: true; json: string; record: LogRecord } | { ok: false; error: Error };

/**
 * Fill in what an ECS record must have (`@timestamp`, `message`), normalize `log.level`, and serialize.
 * A record that cannot be JSON-encoded (cycles, BigInt, a throwing toJSON) comes back as `{ ok: false }`.
 */
export function serializeRecord(input: LogRecordInput, now?: string): Serialized {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return { ok: false, error: new TypeError(`Expected a record object, got ${describe(input)}`) };
  }
  let record = input as LogRecord;
  const ts = record["@timestamp"];
  const needsTs = typeof ts !== "string" || parseTimestamp(ts) !== ts;
  const needsMessage = typeof record.message !== "string";
  const level = record.log?.level;
  const needsLevel = level !== undefined && normalizeLevel(level) !== level;
  if (needsTs || needsMessage || needsLevel) {
    // Copy rather than mutate the caller's object.
    record = { ...record };
    if (needsTs) record["@timestamp"] = parseTimestamp(ts) ?? now ?? new Date().toISOString();
    if (needsMessage) record.message = record.message === undefined ? "" : String(record.message);
    if (needsLevel) {
      const normalized = normalizeLevel(level);
      record.log = { ...record.log };
      if (normalized === undefined) delete record.log.level;
      else record.log.level = normalized;
    }
  }
  try {
    const json = JSON.stringify(record);
    if (typeof json !== "string") throw new TypeError("JSON.stringify returned nothing");
    return { ok: true, json, record };
  } catch (error) {
    return { ok: false, error: error as Error };
  }
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
