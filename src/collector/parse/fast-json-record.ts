// The "json" parser's fast path: build the record's JSON straight from the line's bytes into the channel's frame,
// without decoding the line, JSON.parse, JSON.stringify or encoding the result. On this kind of machine those cost
// about 8 µs per 200-byte line, most of a collector's CPU.
//
// The contract is exact: for every line it accepts, the bytes written are the UTF-8 of what the general path
// (`JSON.stringify(buildRecord(parseJson(line), ctx))`) produces. It accepts only what it can copy verbatim:
//
// - a valid JSON object in valid UTF-8 whose text is already canonical, as JSON.stringify would write it: no
//   whitespace inside nested values, numbers in shortest form (≤ 15 significant digits, no exponent, no trailing
//   fraction zeros, no `-0`), strings without `\u` or `\/` escapes;
// - no duplicate keys and no keys that start with a digit (JSON.parse would reorder array-index keys);
// - nesting at most FAST_MAX_DEPTH; no `__proto__` key at any depth;
// - none of the keys the record builder reshapes: `log`, `host`, `service`, `event`, an unconsumed `message` or
//   `@timestamp`, `stream` when the source sets one, or a key the source's enrichment `fields` also sets.
//
// Everything else returns false and takes the general path, which stays the definition of the record. The
// differential test in test/unit/collector/fast-json-record.test.ts holds the two to the same bytes.
import { isUtf8 } from "node:buffer";
import { MAX_RECORD_BYTES } from "../../channel/protocol.js";
import { epochMs, normalizeLevel, writeIsoFromMs, type LogLevel } from "../../record.js";
import { LEVEL_KEYS, MESSAGE_KEYS, PLAUSIBLE_EPOCH_MS, TIMESTAMP_KEYS, lineTimestamp, type RecordContext } from "./build-record.js";

/** Deeper lines take the general path; the fast scanner recurses once per level. */
const FAST_MAX_DEPTH = 32;
/** Lines with more top-level keys take the general path (the key tables below are fixed-size). */
const MAX_TOP_KEYS = 64;
/**
 * Keys one nested object may have on the fast path. Its duplicate check compares each key with the ones before it:
 * an object with tens of thousands of keys (a map dumped into a log line) would cost seconds per line. Larger ones
 * take the general path, which is linear.
 */
const MAX_NESTED_KEYS = 64;

const enum T {
  STRING = 1,
  NUMBER = 2,
  LITERAL = 3,
  NESTED = 4,
}

/** Where accepted records go: the collector's channel frame (or a test's buffer). */
export interface RecordWriter {
  /** A buffer with room for `maxBytes` at `recordStart`. Nothing is committed until `commit`. */
  reserve(maxBytes: number): Buffer;
  /** Where the record starts in the buffer `reserve` returned. */
  readonly recordStart: number;
  /** The record ends at `end` (exclusive). */
  commit(end: number): void;
}

/** Per-source constants of the record's tail, computed once from the context, as UTF-8. */
export interface FastRecordPlan {
  readonly enrichmentKeys: ReadonlySet<string>;
  /** The context names a file (path, device or inode): every record has a `log.file` object. */
  readonly hasFile: boolean;
  readonly streamSet: boolean;
  readonly defaultLevel: LogLevel | undefined;
  readonly keepOriginal: boolean;
  /** `,"log":{…` openers per level ("" for none), up to the offset's digits (`WithOffset`) or to the closing brace. */
  readonly logHeads: Map<LogLevel | "", Buffer>;
  readonly logHeadsWithOffset: Map<LogLevel | "", Buffer>;
  /**
   * Each indexed by what the line names itself with ECS's dotted keys (bit 1 `service.name`, bit 2 `host.name`): that
   * enrichment is left out, as the builder leaves it out.
   * Without keepOriginal: what follows the log object of a record with a level (`}` + service … + stream + `}`).
   */
  readonly afterLevelLog: readonly Buffer[];
  /** Without keepOriginal: what precedes the log object of a record without a level (service … enrichment). */
  readonly beforePlainLog: readonly Buffer[];
  /** With keepOriginal: service + host, written before `event.original`. */
  readonly middle: readonly Buffer[];
  readonly enrichmentBytes: Buffer;
  readonly streamTail: Buffer;
  /** Upper bound of the constant bytes a record adds. */
  readonly constBytes: number;
  /** The key of the plan's trailer (see planFastRecord): a line that has it takes the general path. */
  readonly trailerKey: Buffer | undefined;
}

/** A key and value every record of the plan ends with, after what the builder writes (a peer's `client`). */
export interface FastRecordTrailer {
  readonly key: string;
  readonly value: unknown;
}

/**
 * Precompute the constant parts of every record of one source (for a file source: of one file, since its path,
 * device and inode are in every record). Returns `undefined` when the context has something the fast path does not
 * reproduce (enrichment that is not plain JSON data), so that source always takes the general path.
 */
export function planFastRecord(ctx: Omit<RecordContext, "now" | "offset">, trailer?: FastRecordTrailer): FastRecordPlan | undefined {
  let enrichment = "";
  const enrichmentKeys = new Set<string>();
  if (ctx.fields !== undefined) {
    for (const key of Object.keys(ctx.fields)) {
      if (key === "__proto__") continue;
      if (isIndexLike(key)) return undefined; // a record puts such keys first
      // The builder merges these into objects it also writes; the general path keeps that logic.
      if (key === "log" || key === "service" || key === "host" || key === "event" || key === "stream") return undefined;
      if (key === "service.name" || key === "host.name") return undefined; // it takes the place of that enrichment
      if (key === "@timestamp" || key === "message" || key === "error") return undefined;
      const value = ctx.fields[key];
      if (!isJsonData(value, 32)) return undefined;
      enrichmentKeys.add(key);
      enrichment += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
    }
  }
  const service = ctx.source === undefined ? "" : `,"service":{"name":${JSON.stringify(ctx.source)}}`;
  const host = ctx.host === undefined ? "" : `,"host":{"name":${JSON.stringify(ctx.host)}}`;
  // `log.file` as the builder writes it: path, device_id, inode (each when known).
  const fileParts: string[] = [];
  if (ctx.filePath !== undefined) fileParts.push(`"path":${JSON.stringify(ctx.filePath)}`);
  if (ctx.fileDeviceId !== undefined) fileParts.push(`"device_id":${JSON.stringify(ctx.fileDeviceId)}`);
  if (ctx.fileInode !== undefined) fileParts.push(`"inode":${JSON.stringify(ctx.fileInode)}`);
  const file = fileParts.length === 0 ? "" : `"file":{${fileParts.join(",")}}`;
  const stream = ctx.stream === undefined ? "" : `,"stream":${JSON.stringify(ctx.stream)}`;
  const logHeads = new Map<LogLevel | "", Buffer>();
  const logHeadsWithOffset = new Map<LogLevel | "", Buffer>();
  for (const level of ["", "trace", "debug", "info", "warn", "error", "fatal"] as const) {
    let head = `,"log":{`;
    if (level !== "") head += `"level":"${level}"` + (file === "" ? "" : ",");
    head += file;
    logHeads.set(level, Buffer.from(head));
    logHeadsWithOffset.set(level, Buffer.from(head + (level !== "" || file !== "" ? "," : "") + '"offset":'));
  }
  // A trailer replaces any value of its key (the general path then merges them): lines or fields naming it take that path.
  if (trailer !== undefined && (enrichmentKeys.has(trailer.key) || !isJsonData(trailer.value, 32))) return undefined;
  const tail = trailer === undefined ? "" : `,${JSON.stringify(trailer.key)}:${JSON.stringify(trailer.value)}`;
  const middle = Buffer.from(service + host);
  const enrichmentBytes = Buffer.from(enrichment);
  /** `named`: bit 1, the line names its service (dotted key); bit 2, its host. */
  const named = (bits: number): string => ((bits & 1) === 0 ? service : "") + ((bits & 2) === 0 ? host : "");
  const variants = (make: (serviceAndHost: string) => string): Buffer[] => [0, 1, 2, 3].map((bits) => Buffer.from(make(named(bits))));
  return {
    enrichmentKeys,
    hasFile: file !== "",
    streamSet: ctx.stream !== undefined,
    defaultLevel: ctx.defaultLevel ?? (ctx.stream === "stderr" ? "warn" : undefined),
    keepOriginal: ctx.keepOriginal === true,
    logHeads,
    logHeadsWithOffset,
    afterLevelLog: variants((sh) => "}" + sh + enrichment + stream + tail + "}"),
    beforePlainLog: variants((sh) => sh + enrichment),
    middle: variants((sh) => sh),
    streamTail: Buffer.from(stream + tail + "}"),
    constBytes: 160 + Buffer.byteLength(file) + middle.length + enrichmentBytes.length + Buffer.byteLength(stream) + Buffer.byteLength(tail),
    enrichmentBytes,
    trailerKey: trailer === undefined ? undefined : Buffer.from(trailer.key),
  };
}

// Plain objects, arrays, strings, finite numbers, booleans and null, without `__proto__` keys: what merging
// copies and JSON.stringify writes the same way in both paths.
function isJsonData(v: unknown, depth: number): boolean {
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v);
  if (typeof v !== "object" || depth === 0) return false;
  if (Array.isArray(v)) return v.every((x) => isJsonData(x, depth - 1));
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key of Object.keys(v)) {
    if (key === "__proto__" || isIndexLike(key)) return false;
    if (!isJsonData((v as Record<string, unknown>)[key], depth - 1)) return false;
  }
  return true;
}

function isIndexLike(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 48 && c <= 57;
}

// Scanner state, module-level so a line allocates little beyond its output (and the values of the keys it reads).
let src: Buffer = Buffer.alloc(0);
const keyStart = new Int32Array(MAX_TOP_KEYS);
const keyEnd = new Int32Array(MAX_TOP_KEYS);
const valStart = new Int32Array(MAX_TOP_KEYS);
const valEnd = new Int32Array(MAX_TOP_KEYS);
const valType = new Uint8Array(MAX_TOP_KEYS);
/** 1 when a top-level string value holds escapes (decoding it then needs JSON.parse). */
const valEscaped = new Uint8Array(MAX_TOP_KEYS);
/** Length and first/last byte of each top-level key: most duplicate checks end here. */
const keySig = new Int32Array(MAX_TOP_KEYS);
/** Where each timestamp key (by its rank in TIMESTAMP_KEYS) sits; valid where the line's tsKeys bit is set. */
const tsIndex = new Int32Array(TIMESTAMP_KEYS.length);
/** Duplicate-key hash table: 128 slots (twice MAX_TOP_KEYS), valid where `slotLine` holds the current line's number. */
const SLOTS = 128;
const slotLine = new Int32Array(SLOTS);
const slotKey = new Int32Array(SLOTS);
let lineNo = 0;
/** Each top-level key's role (see ROLES), 0 for an ordinary field. */
const keyRole = new Uint8Array(MAX_TOP_KEYS);
/** Nested objects' key spans, a stack shared by all levels (for duplicate detection). */
let nestedKeys = new Int32Array(256);
/** The last scanned string held an escape. */
let escaped = false;
/** A byte of 0x80 or more was seen inside a string (the line is then checked to be valid UTF-8). */
let nonAscii = false;
/** Whitespace between the top-level tokens: kept fields are then copied one by one, without it. */
let topWs = false;

const HEAD = Buffer.from('{"@timestamp":"');
const MESSAGE = Buffer.from('","message":');
const ORIGINAL = Buffer.from(',"event":{"original":');

/**
 * Text convenience (tests, multiline events): the record's JSON for `line`, or `undefined` when the general path
 * must build it.
 */
export function fastJsonRecord(line: string, plan: FastRecordPlan, now: string, offset: number | undefined): string | undefined {
  const bytes = Buffer.from(line);
  let out = "";
  const writer: RecordWriter = {
    recordStart: 0,
    reserve: (max) => (scratch.length >= max ? scratch : (scratch = Buffer.allocUnsafe(max))),
    commit: (end) => {
      out = scratch.toString("utf8", 0, end);
    },
  };
  return fastJsonRecordBytes(bytes, 0, bytes.length, plan, now, offset, writer) ? out : undefined;
}
let scratch = Buffer.allocUnsafe(4096);

/**
 * Write the record for the line `buf[start..end)` (without its newline) through `writer` and return true, or
 * return false (nothing written) when the general path must build it. `now` is the arrival time (ISO) for lines
 * without a usable timestamp, `offset` the line's file offset (or undefined).
 */
export function fastJsonRecordBytes(
  buf: Buffer,
  start: number,
  end: number,
  plan: FastRecordPlan,
  now: string,
  offset: number | undefined,
  writer: RecordWriter,
): boolean {
  if (end > start && buf[end - 1] === 13) end--;
  if (end - start < 2 || buf[start] !== 123 || buf[end - 1] !== 125) return false;
  // A line whose record could pass the channel's record limit (the bound is 5n + constBytes, see below) takes the
  // general path, which measures the record: the reservation stays bounded and the channel never has to drop
  // a record already written into its frame.
  if (5 * (end - start) + plan.constBytes > MAX_RECORD_BYTES) return false;
  src = buf;
  nonAscii = false;
  const count = scanTop(start, end);
  src = EMPTY;
  if (count < 0) return false;
  if (nonAscii && !isUtf8(buf.subarray(start, end))) return false;

  // One role lookup per key; the candidates then win by the builder's priority order, not by position.
  let msgAt = -1;
  let msgRank = 99;
  let levelAt = -1;
  let levelRank = 99;
  let lineLevel: LogLevel | undefined;
  let tsKeys = 0; // bit r: TIMESTAMP_KEYS[r] is present, at tsIndex[r]
  let hasMessageKey = false;
  let hasTimestampKey = false;
  const enriched = plan.enrichmentKeys.size > 0;
  const trailerKey = plan.trailerKey;
  /** What the line names itself with dotted keys: bit 1 `service.name`, bit 2 `host.name`. */
  let named = 0;
  for (let i = 0; i < count; i++) {
    if (enriched && plan.enrichmentKeys.has(keyName(buf, i))) return false;
    if (trailerKey !== undefined && isKey(buf, keyStart[i]!, keyEnd[i]!, trailerKey)) return false;
    const role = keyRole[i]!;
    if (role === 0) continue;
    // Kept as fields like any other; the enrichment they name is left out.
    if (role === SERVICE_NAMED || role === HOST_NAMED) {
      named |= role === SERVICE_NAMED ? 1 : 2;
      continue;
    }
    if (role === RESHAPED || (role === STREAM && plan.streamSet)) return false;
    if (role >= MSG_ROLE && role < MSG_ROLE + 10) {
      const rank = role - MSG_ROLE;
      if (rank === 0) hasMessageKey = true;
      const t = valType[i];
      if (rank < msgRank && (t === T.STRING || (rank === 0 && (t === T.NUMBER || isBoolean(buf, i))))) {
        msgRank = rank;
        msgAt = i;
      }
    } else if (role >= LEVEL_ROLE && role < LEVEL_ROLE + 10) {
      const rank = role - LEVEL_ROLE;
      if (rank < levelRank) {
        const v = primitive(buf, i);
        if (v === NESTED) return false;
        const normalized = normalizeLevel(v);
        if (normalized !== undefined) {
          levelRank = rank;
          levelAt = i;
          lineLevel = normalized;
        }
      }
    } else if (role >= TS_ROLE) {
      const rank = role - TS_ROLE;
      if (rank === 0) hasTimestampKey = true;
      tsKeys |= 1 << rank;
      tsIndex[rank] = i;
    }
  }
  const level = lineLevel ?? plan.defaultLevel;
  // Timestamps: the first key in priority order that parses wins (usually the first one tried).
  let tsAt = -1;
  let timestamp: string | undefined;
  /** A numeric timestamp's epoch ms (written as bytes, never as a string), or -1. */
  let tsMs = -1;
  if (tsKeys !== 0) {
    for (let r = 0; r < TIMESTAMP_KEYS.length; r++) {
      if ((tsKeys & (1 << r)) === 0) continue;
      const i = tsIndex[r]!;
      if (valType[i] === T.NUMBER) {
        // parseTimestamp(number) is isoFromMs(epochMs(number)): keep the ms and write it below.
        const ms = epochMs(numberAt(buf, valStart[i]!, valEnd[i]!));
        // As lineTimestamp: under a key other than @timestamp (rank 0), an epoch before 2000 is some other number.
        if (ms !== undefined && (r === 0 || ms >= PLAUSIBLE_EPOCH_MS)) {
          tsMs = ms;
          tsAt = i;
          break;
        }
        continue;
      }
      const v = primitive(buf, i);
      if (v === NESTED) return false;
      if ((timestamp = lineTimestamp(TIMESTAMP_KEYS[r]!, v)) !== undefined) {
        tsAt = i;
        break;
      }
    }
  }
  // The builder moves an unconsumed `message` or `@timestamp` aside; leave that to it.
  if (hasMessageKey && (msgAt < 0 || keyRole[msgAt] !== MSG_ROLE)) return false;
  if (hasTimestampKey && (tsAt < 0 || keyRole[tsAt] !== TS_ROLE)) return false;

  // Everything is known: write. The line's bytes appear at most three times (message, kept fields, original),
  // and JSON-escaping a line at most doubles it: the record fits in 5n + constBytes. The line itself is copied once
  // just past that, so the pieces taken from it move inside one buffer (copyWithin) rather than by a copy that
  // allocates a view per call.
  const n = end - start;
  const out = writer.reserve(6 * n + plan.constBytes);
  let p = writer.recordStart;
  const shift = p + 5 * n + plan.constBytes - start;
  // TypedArray#set with a view, not Buffer#copy: the same copy without copy()'s argument handling (half the time
  // for a 200-byte line).
  out.set(new Uint8Array(buf.buffer, buf.byteOffset + start, n), start + shift);
  p = put(HEAD, out, p);
  p = tsMs !== -1 ? writeIsoFromMs(tsMs, out, p) : putAscii(timestamp ?? now, out, p);
  p = put(MESSAGE, out, p);
  if (msgAt < 0) p = putJsonString(buf, start, end, out, p);
  else if (valType[msgAt] === T.STRING) p = copy(shift, valStart[msgAt]!, valEnd[msgAt]!, out, p);
  else {
    out[p++] = 34;
    p = copy(shift, valStart[msgAt]!, valEnd[msgAt]!, out, p);
    out[p++] = 34;
  }
  // Kept fields go out verbatim. Without top-level whitespace, a run of consecutive kept fields is one copy.
  let runStart = -1;
  let runEnd = -1;
  for (let i = 0; i < count; i++) {
    if (i === msgAt || i === levelAt || i === tsAt) continue;
    const ks = keyStart[i]! - 1;
    if (topWs) {
      out[p++] = 44;
      p = copy(shift, ks, keyEnd[i]! + 1, out, p);
      out[p++] = 58;
      p = copy(shift, valStart[i]!, valEnd[i]!, out, p);
      continue;
    }
    if (runStart >= 0 && ks === runEnd + 1) {
      runEnd = valEnd[i]!;
      continue;
    }
    if (runStart >= 0) {
      out[p++] = 44;
      p = copy(shift, runStart, runEnd, out, p);
    }
    runStart = ks;
    runEnd = valEnd[i]!;
  }
  if (runStart >= 0) {
    out[p++] = 44;
    p = copy(shift, runStart, runEnd, out, p);
  }
  // Key order follows the builder: `log` is created by the level step when there is a level, else by the
  // file / offset step after service, host, event and enrichment.
  const hasLog = level !== undefined || plan.hasFile || offset !== undefined;
  if (!plan.keepOriginal) {
    // The common shape: two constant copies around the offset's digits.
    if (level !== undefined) {
      p = openLog(plan, level, offset, out, p);
      p = put(plan.afterLevelLog[named]!, out, p);
    } else {
      p = put(plan.beforePlainLog[named]!, out, p);
      if (hasLog) {
        p = openLog(plan, "", offset, out, p);
        out[p++] = 125;
      }
      p = put(plan.streamTail, out, p);
    }
    writer.commit(p);
    return true;
  }
  if (level !== undefined) {
    p = openLog(plan, level, offset, out, p);
    out[p++] = 125;
  }
  p = put(plan.middle[named]!, out, p);
  if (plan.keepOriginal) {
    p = put(ORIGINAL, out, p);
    p = putJsonString(buf, start, end, out, p);
    out[p++] = 125;
  }
  p = put(plan.enrichmentBytes, out, p);
  if (level === undefined && hasLog) {
    p = openLog(plan, "", offset, out, p);
    out[p++] = 125;
  }
  p = put(plan.streamTail, out, p);
  writer.commit(p);
  return true;
}

const EMPTY = Buffer.alloc(0);

/** The log object up to (not including) its closing brace: level, file, offset. */
function openLog(plan: FastRecordPlan, level: LogLevel | "", offset: number | undefined, out: Buffer, p: number): number {
  if (offset === undefined) return put(plan.logHeads.get(level)!, out, p);
  p = put(plan.logHeadsWithOffset.get(level)!, out, p);
  return Number.isSafeInteger(offset) && offset >= 0 ? putDigits(offset, out, p) : putAscii(String(offset), out, p);
}

/** A non-negative safe integer's decimal digits to `out` at `p` (what String() gives, without the string). */
function putDigits(v: number, out: Buffer, p: number): number {
  let end = p + 1;
  if (v <= 0x7fffffff) {
    // The usual case: 32-bit integer division, not float.
    for (let t = v; t >= 10; t = (t / 10) | 0) end++;
    let q = end;
    do {
      const next = (v / 10) | 0;
      out[--q] = 48 + v - next * 10;
      v = next;
    } while (v !== 0);
    return end;
  }
  for (let t = v; t >= 10; t = Math.floor(t / 10)) end++;
  let q = end;
  do {
    const d = v % 10;
    out[--q] = 48 + d;
    v = (v - d) / 10;
  } while (v !== 0);
  return end;
}

/**
 * Copy all of `b` to `out` at `p`. TypedArray#set of a whole array is a builtin without Buffer#copy's argument
 * handling (about 22 ns against 30–45 here, and a loop's 2 ns per byte).
 */
function put(b: Buffer, out: Buffer, p: number): number {
  out.set(b, p);
  return p + b.length;
}

/**
 * Copy the line's bytes `[s..e)` (line offsets; the line sits in `out` at `shift` past them) to `out` at `p`,
 * returning the end. copyWithin costs about 25 ns; a loop 2 ns per byte, which wins below about 12 bytes.
 */
function copy(shift: number, s: number, e: number, out: Buffer, p: number): number {
  const n = e - s;
  if (n > 12) {
    out.copyWithin(p, s + shift, e + shift);
    return p + n;
  }
  for (let k = 0, from = s + shift; k < n; k++) out[p + k] = out[from + k]!;
  return p + n;
}

/** An ASCII string (timestamps, numbers) to `out` at `p`. */
function putAscii(text: string, out: Buffer, p: number): number {
  const n = text.length;
  for (let k = 0; k < n; k++) out[p + k] = text.charCodeAt(k);
  return p + n;
}

const HEX = "0123456789abcdef";

/** `buf[s..e)` (valid UTF-8) as a JSON string, escaped as JSON.stringify escapes it. */
function putJsonString(buf: Buffer, s: number, e: number, out: Buffer, p: number): number {
  out[p++] = 34;
  for (let i = s; i < e; i++) {
    const c = buf[i]!;
    if (c === 34 || c === 92) {
      out[p++] = 92;
      out[p++] = c;
    } else if (c >= 32) {
      out[p++] = c;
    } else {
      out[p++] = 92;
      const short = c === 8 ? 98 : c === 9 ? 116 : c === 10 ? 110 : c === 12 ? 102 : c === 13 ? 114 : 0;
      if (short !== 0) out[p++] = short;
      else {
        out[p++] = 117;
        out[p++] = 48;
        out[p++] = 48;
        out[p++] = HEX.charCodeAt(c >> 4);
        out[p++] = HEX.charCodeAt(c & 15);
      }
    }
  }
  out[p++] = 34;
  return p;
}

const NESTED = Symbol("nested");

function keyName(buf: Buffer, i: number): string {
  const raw = buf.toString("utf8", keyStart[i]! - 1, keyEnd[i]! + 1);
  return raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
}

/**
 * The role of the key spelled by `src[ks..ke)`, without decoding it: a table indexed by length and first byte gives
 * the candidates (usually none, at most two), whose remaining bytes are then compared in place.
 */
function roleOf(ks: number, ke: number): number {
  const len = ke - ks;
  if (len > ROLE_MAX_LENGTH) return 0;
  for (let c = ROLE_FIRST[(len << 8) | src[ks]!]! - 1; c >= 0; c = ROLE_NEXT[c]!) {
    const name = ROLE_BYTES[c]!;
    let k = 1;
    while (k < len && src[ks + k] === name[k]) k++;
    if (k === len) return ROLE_VALUE[c]!;
  }
  return 0;
}

function spells(name: string, at: number): boolean {
  for (let k = 1; k < name.length; k++) if (src[at + k] !== name.charCodeAt(k)) return false;
  return true;
}

// Roles of top-level keys: the builder's candidates (with their priority rank) and the keys it reshapes.
const RESHAPED = 1;
const STREAM = 2;
/** A line naming its service or host with ECS's dotted keys: kept as a field, and that enrichment left out. */
const SERVICE_NAMED = 3;
const HOST_NAMED = 4;
const MSG_ROLE = 10;
const LEVEL_ROLE = 20;
const TS_ROLE = 30;
const ROLES = new Map<string, number>([
  ["log", RESHAPED],
  ["host", RESHAPED],
  ["service", RESHAPED],
  ["event", RESHAPED],
  ["service.name", SERVICE_NAMED],
  ["host.name", HOST_NAMED],
  ["stream", STREAM],
  ["log.level", LEVEL_ROLE],
  ...LEVEL_KEYS.map((k, r): [string, number] => [k, LEVEL_ROLE + 1 + r]),
  ...MESSAGE_KEYS.filter((k) => k !== "log").map((k): [string, number] => [k, MSG_ROLE + MESSAGE_KEYS.indexOf(k)]),
  ...TIMESTAMP_KEYS.map((k, r): [string, number] => [k, TS_ROLE + r]),
]);
const ROLE_MAX_LENGTH = Math.max(...[...ROLES.keys()].map((k) => k.length));
/** Per (length << 8 | first byte): 1 + index of the first candidate in the lists below, 0 for none. */
const ROLE_FIRST = new Int16Array((ROLE_MAX_LENGTH + 1) << 8);
const ROLE_BYTES: Uint8Array[] = [];
const ROLE_VALUE: number[] = [];
/** The next candidate with the same length and first byte, or -1. */
const ROLE_NEXT: number[] = [];
for (const [name, role] of ROLES) {
  const slot = (name.length << 8) | name.charCodeAt(0);
  ROLE_BYTES.push(Buffer.from(name, "latin1"));
  ROLE_VALUE.push(role);
  ROLE_NEXT.push(ROLE_FIRST[slot]! - 1);
  ROLE_FIRST[slot] = ROLE_BYTES.length;
}

function isBoolean(buf: Buffer, i: number): boolean {
  return valType[i] === T.LITERAL && buf[valStart[i]!] !== 110; // true / false, not null
}

/** The decoded value of top-level value `i` when it is a string, number or literal; NESTED for objects/arrays. */
function primitive(buf: Buffer, i: number): unknown {
  const s = valStart[i]!;
  const e = valEnd[i]!;
  switch (valType[i]) {
    case T.STRING:
      // Canonical strings only hold \" \\ \b \f \n \r \t escapes; JSON.parse decodes them exactly.
      return valEscaped[i] === 0 ? buf.toString("utf8", s + 1, e - 1) : (JSON.parse(buf.toString("utf8", s, e)) as string);
    case T.NUMBER:
      return numberAt(buf, s, e);
    case T.LITERAL: {
      const c = buf[s];
      return c === 116 ? true : c === 102 ? false : null;
    }
    default:
      return NESTED;
  }
}

/** A canonical number's value: integers of up to 15 digits summed in place (exact), others by Number(). */
function numberAt(buf: Buffer, s: number, e: number): number {
  if (e - s <= 15) {
    let v = 0;
    // As in scanNumber, no operation only a negative number would run.
    const negative = buf[s] === 45 ? 1 : 0;
    for (let k = s + negative; k < e; k++) {
      const d = buf[k]! - 48;
      if (d < 0 || d > 9) return Number(buf.toString("latin1", s, e));
      v = v * 10 + d;
    }
    return v * (1 - 2 * negative);
  }
  return Number(buf.toString("latin1", s, e));
}

/** Scan the top-level object of `src[start..n)`. Returns the key count, or -1 when the fast path does not apply. */
function scanTop(start: number, n: number): number {
  const b = src;
  const line = (lineNo = (lineNo + 1) | 0);
  let i = skipWs(start + 1, n);
  let count = 0;
  topWs = i !== start + 1;
  if (b[i] === 125) return skipWs(i + 1, n) === n ? 0 : -1;
  for (;;) {
    if (count === MAX_TOP_KEYS || b[i] !== 34) return -1;
    const ks = i + 1;
    i = scanString(i, n);
    if (i < 0) return -1;
    const ke = i - 1;
    if (ke === ks || isDigit(b[ks]!) || isProto(ks, ke)) return -1;
    // Duplicate keys: JSON.parse keeps the last. Verbatim text compares exactly: the escapes allowed are canonical.
    // A small hash table of this line's key signatures (length, first and last byte) finds candidates.
    const sig = ((ke - ks) << 16) ^ (b[ks]! << 8) ^ b[ke - 1]!;
    let h = Math.imul(sig, 0x9e3779b1) >>> 25;
    while (slotLine[h] === line) {
      const j = slotKey[h]!;
      if (keySig[j] === sig && sameText(keyStart[j]!, keyEnd[j]!, ks, ke)) return -1;
      h = (h + 1) & (SLOTS - 1);
    }
    slotLine[h] = line;
    slotKey[h] = count;
    keySig[count] = sig;
    // Role names hold no escapes, so an escaped key is an ordinary field.
    keyRole[count] = escaped ? 0 : roleOf(ks, ke);
    if (b[i] !== 58) {
      i = skipWs(i, n);
      topWs = true;
      if (b[i] !== 58) return -1;
    }
    i++;
    if (isWs(b[i]!)) {
      i = skipWs(i, n);
      topWs = true;
    }
    const vs = i;
    const c = b[i]!;
    let type: T;
    if (c === 34) {
      i = scanString(i, n);
      type = T.STRING;
      valEscaped[count] = escaped ? 1 : 0;
    } else if (c === 123 || c === 91) {
      i = scanNested(i, n, 1, 0);
      type = T.NESTED;
    } else if (c === 45 || isDigit(c)) {
      i = scanNumber(i, n);
      type = T.NUMBER;
    } else {
      i = scanLiteral(i, n);
      type = T.LITERAL;
    }
    if (i < 0) return -1;
    keyStart[count] = ks;
    keyEnd[count] = ke;
    valStart[count] = vs;
    valEnd[count] = i;
    valType[count] = type;
    count++;
    let sep = b[i];
    if (isWs(sep!)) {
      i = skipWs(i, n);
      topWs = true;
      sep = b[i];
    }
    if (sep === 44) {
      i++;
      if (isWs(b[i]!)) {
        i = skipWs(i, n);
        topWs = true;
      }
      continue;
    }
    if (sep === 125) return skipWs(i + 1, n) === n ? count : -1;
    return -1;
  }
}

/**
 * A string starting at the quote at `i`; returns the index after its closing quote, or -1. Raw control bytes are
 * invalid JSON; escapes must be ones JSON.stringify writes: \" \\ \b \f \n \r \t (not \u, not \/). Sets
 * `escaped` when it holds any, and `nonAscii` when it holds bytes of multi-byte characters.
 */
function scanString(i: number, n: number): number {
  const b = src; // a local: the loop then keeps the buffer's base and length in registers
  let esc = false;
  let high = false;
  for (let j = i + 1; j < n; j++) {
    const c = b[j]!;
    if (PLAIN[c] === 1) continue;
    if (c === 34) {
      escaped = esc;
      if (high) nonAscii = true;
      return j + 1;
    }
    if (c === 92) {
      const e = b[j + 1];
      if (e !== 34 && e !== 92 && e !== 98 && e !== 102 && e !== 110 && e !== 114 && e !== 116) return -1;
      esc = true;
      j++;
    } else if (c < 32) return -1;
    else if (c >= 128) high = true;
  }
  return -1;
}

/** 1 for the bytes a string holds as they are: printable ASCII other than `"` and `\`. */
const PLAIN = new Uint8Array(256);
for (let c = 32; c < 128; c++) if (c !== 34 && c !== 92) PLAIN[c] = 1;

const PROTO = "__proto__";

function isProto(ks: number, ke: number): boolean {
  return ke - ks === 9 && src[ks] === 95 && spells(PROTO, ks);
}

/** An object or array at `i` (no whitespace inside, as JSON.stringify writes them). Returns its end or -1. */
function scanNested(i: number, n: number, depth: number, base: number): number {
  const b = src;
  if (depth > FAST_MAX_DEPTH) return -1;
  const open = b[i];
  const close = open === 123 ? 125 : 93;
  i++;
  if (b[i] === close) return i + 1;
  let top = base;
  for (;;) {
    if (open === 123) {
      if (b[i] !== 34) return -1;
      const ks = i;
      i = scanString(i, n);
      if (i < 0 || i - ks === 2 || isDigit(b[ks + 1]!) || isProto(ks + 1, i - 1)) return -1;
      // Duplicate keys: JSON.parse keeps the last, a verbatim copy would keep both.
      if (top - base >= 2 * MAX_NESTED_KEYS) return -1;
      for (let k = base; k < top; k += 2) if (sameText(nestedKeys[k]!, nestedKeys[k + 1]!, ks, i)) return -1;
      if (top + 2 > nestedKeys.length) {
        const grown = new Int32Array(nestedKeys.length * 2);
        grown.set(nestedKeys);
        nestedKeys = grown;
      }
      nestedKeys[top++] = ks;
      nestedKeys[top++] = i;
      if (b[i] !== 58) return -1;
      i++;
    }
    const c = b[i]!;
    if (c === 34) i = scanString(i, n);
    else if (c === 123 || c === 91) i = scanNested(i, n, depth + 1, top);
    else if (c === 45 || isDigit(c)) i = scanNumber(i, n);
    else i = scanLiteral(i, n);
    if (i < 0) return -1;
    const sep = b[i];
    if (sep === 44) {
      i++;
      continue;
    }
    return sep === close ? i + 1 : -1;
  }
}

/** Whether the key at `buf[ks..ke)` is `key`'s bytes (escaped keys never are: the escapes allowed make no letters). */
function isKey(buf: Buffer, ks: number, ke: number, key: Buffer): boolean {
  if (ke - ks !== key.length) return false;
  for (let j = 0; j < key.length; j++) if (buf[ks + j] !== key[j]) return false;
  return true;
}

function sameText(a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (; a < aEnd; a++, b++) if (src[a] !== src[b]) return false;
  return true;
}

/**
 * A number in the exact form JSON.stringify(JSON.parse(text)) gives back: -?(0|[1-9]d*)(.d*[1-9])?, at most 15
 * significant digits (so the double keeps them all), no exponent, not -0, not below 1e-6 (written with an exponent).
 */
function scanNumber(i: number, n: number): number {
  // Every operation here runs for every number, whatever its digits. An optimized scanner that meets one it has not
  // run yet (for the first 0, negative number or 0.05 after thousands of lines without one) is thrown away and
  // compiled again: about 10 ms of a collector's CPU each time.
  const negative = src[i] === 45 ? 1 : 0;
  i += negative;
  const first = src[i]!;
  if (!isDigit(first)) return -1;
  // A leading 0 stands alone ("0", "0.5"; after "01" the caller finds no separator).
  const zero = first === 48 ? 1 : 0;
  i += zero;
  let significant = 0;
  if (zero === 0) {
    while (i < n && isDigit(src[i]!)) {
      i++;
      significant++;
    }
  }
  let c = src[i]!;
  if (c === 46) {
    i++;
    const fracStart = i;
    let leadingZeros = 0;
    while (i < n && isDigit((c = src[i]!))) {
      // Zeros between "0." and the first other digit are not significant.
      const lead = (significant | (c ^ 48)) === 0 ? 1 : 0;
      leadingZeros += lead;
      significant += 1 - lead;
      i++;
    }
    if (i === fracStart || src[i - 1] === 48) return -1;
    if (significant === 0 || leadingZeros >= 6) return -1;
  } else if ((zero & negative) === 1) {
    return -1; // -0
  }
  c = src[i]!;
  if (c === 101 || c === 69 || significant > 15) return -1;
  return i;
}

function scanLiteral(i: number, n: number): number {
  const c = src[i];
  const word = c === 116 ? "true" : c === 102 ? "false" : c === 110 ? "null" : undefined;
  if (word === undefined || i + word.length > n || !spells(word, i)) return -1;
  return i + word.length;
}

function skipWs(i: number, n: number): number {
  while (i < n && isWs(src[i]!)) i++;
  return i;
}

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
