// Receiving side of GELF: payload bytes → (gzip | zlib | plain, by magic bytes) → JSON → validated like Graylog's
// codec → the fields handed to buildRecord. Mirrors src/sinks/gelf-message.ts, which maps the other way.
//
// Mapping (documented on NetworkSource):
//   full_message ?? short_message  → message      (Logstash's GELF input does the same; our GelfSink sends the
//                                                  whole multi-line message as full_message, so it round-trips)
//   short_message                  → short_message, only when it is not the start of full_message
//   timestamp (seconds, fraction)  → @timestamp   (missing or <= 0: arrival time; unparseable: @timestamp_raw)
//   level (syslog 0–7)             → log.level via normalizeLevel, and log.syslog.severity.code
//   host                           → host.name    (the sender's; we never stamp our own)
//   _foo                           → foo          (a name already taken gets a trailing `_`: `_host` → `host_`)
//   version                        → dropped; other fields (facility, line, file…) are kept as they are
import { gunzipSync, inflateSync } from "node:zlib";
import { normalizeLevel, parseTimestamp } from "../../record.js";
import { parseJson } from "../parse/json.js";
import type { ParsedLine } from "../parse/types.js";

/** Why a GELF payload was dropped: the name of the counter it increments. */
export type GelfDropReason =
  | "gelfInvalidJson"
  | "gelfNotAnObject"
  | "gelfMissingMessage"
  | "gelfInvalidHost"
  | "gelfDecompressFailed"
  | "gelfTooLarge";

// Keys consumed by the standard mapping: never copied as extras.
const CONSUMED = new Set(["version", "short_message", "full_message", "host", "timestamp", "level"]);

/** Payload compression by its first two bytes (protocols.md §1.4). */
export function gelfCompression(payload: Buffer): "gzip" | "zlib" | "none" {
  if (payload.length >= 2) {
    const a = payload[0]!;
    const b = payload[1]!;
    if (a === 0x1f && b === 0x8b) return "gzip";
    if (a === 0x78 && (a * 256 + b) % 31 === 0) return "zlib";
  }
  return "none";
}

/**
 * Decompress when the magic bytes say so, never producing more than `maxBytes` (zip bombs stop at the limit).
 * Returns the JSON bytes or the reason to drop the payload.
 */
export function decompressGelf(payload: Buffer, maxBytes: number): Buffer | GelfDropReason {
  const kind = gelfCompression(payload);
  if (kind === "none") return payload.length > maxBytes ? "gelfTooLarge" : payload;
  try {
    return kind === "gzip" ? gunzipSync(payload, { maxOutputLength: maxBytes }) : inflateSync(payload, { maxOutputLength: maxBytes });
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" ? "gelfTooLarge" : "gelfDecompressFailed";
  }
}

/**
 * Validate one GELF JSON text and turn it into a ParsedLine whose fields `buildRecord` understands
 * (`message`, `@timestamp`, `log.level` are read from there). Returns the drop reason for invalid GELF.
 */
export function parseGelf(text: string): ParsedLine | GelfDropReason {
  const parsed = parseJson(text);
  if (parsed.blank === true || parsed.error === "invalid_json" || parsed.error === "too_deep") return "gelfInvalidJson";
  if (parsed.fields === undefined) return "gelfNotAnObject";
  const g = parsed.fields;
  let short = g["short_message"];
  let usedMessageKey = false;
  if (typeof short !== "string") {
    // Graylog accepts a plain `message` string when `short_message` is absent.
    if (short !== undefined || typeof g["message"] !== "string") return "gelfMissingMessage";
    short = g["message"];
    usedMessageKey = true;
  }
  const shortText = (short as string).trim();
  const fullRaw = g["full_message"];
  const full = typeof fullRaw === "string" && fullRaw.trim().length > 0 ? fullRaw : undefined;
  if (shortText.length === 0 && full === undefined) return "gelfMissingMessage";
  const host = g["host"];
  if (host !== undefined && (typeof host !== "string" || host.trim().length === 0)) return "gelfInvalidHost";

  const fields: Record<string, unknown> = { message: full ?? shortText };
  if (full !== undefined && shortText.length > 0 && !full.trimStart().startsWith(shortText)) fields["short_message"] = shortText;
  if (typeof host === "string") fields["host"] = host;
  const ts = g["timestamp"];
  if (ts !== undefined && !(typeof ts === "number" && ts <= 0)) {
    // An unparseable value stays visible: buildRecord moves it to @timestamp_raw and uses the arrival time.
    fields["@timestamp"] = parseTimestamp(ts) ?? ts;
  }
  const level = g["level"];
  if (level !== undefined) {
    const normalized = normalizeLevel(level);
    if (normalized === undefined) fields["level"] = level;
    else {
      fields["log.level"] = normalized;
      if (typeof level === "number" && Number.isInteger(level) && level >= 0 && level <= 7) {
        fields["log"] = { syslog: { severity: { code: level } } };
      }
    }
  }
  if (fullRaw !== undefined && full === undefined && typeof fullRaw !== "string") fields["full_message"] = fullRaw;
  /** Numbers given to names still taken after a few `_`, counted per message (see below). */
  let clashes = 0;
  for (const key in g) {
    if (CONSUMED.has(key) || (usedMessageKey && key === "message")) continue;
    let name = key.charCodeAt(0) === 95 /* _ */ ? key.slice(1) : key;
    if (name.length === 0 || name === "__proto__") continue;
    if (Object.hasOwn(fields, name)) {
      // A name another field has gets `_` appended, up to four times; then a number, counted per message. Appending
      // without end let a message made of chains (`a`, `a_`, `a__` … then `_a`, `_a_` …) cost time quadratic in its
      // size: seconds for one deflated UDP datagram.
      let candidate = `${name}_`;
      for (let tries = 1; Object.hasOwn(fields, candidate); tries++) candidate = tries < 4 ? `${candidate}_` : `${name}_${++clashes}`;
      name = candidate;
    }
    fields[name] = g[key];
  }
  return { line: text, fields };
}
