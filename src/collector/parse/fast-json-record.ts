// The "json" parser's fast path: build the record's JSON text straight from the line, without JSON.parse and
// JSON.stringify. On this kind of machine the two cost about 7 µs per 200-byte line, most of a collector's CPU.
//
// The contract is exact: for every line it accepts, the result is byte for byte what the general path
// (`JSON.stringify(buildRecord(parseJson(line), ctx))`) produces. It accepts only what it can copy verbatim:
//
// - a valid JSON object whose text is already canonical, as JSON.stringify would write it: no whitespace inside
//   nested values, numbers in shortest form (≤ 15 significant digits, no exponent, no trailing fraction zeros, no
//   `-0`), strings without `\u` or `\/` escapes and without surrogates (emoji go the general way);
// - no duplicate keys and no keys that start with a digit (JSON.parse would reorder array-index keys);
// - nesting at most FAST_MAX_DEPTH; no `__proto__` anywhere (the line's text is checked before scanning);
// - none of the keys the record builder reshapes: `log`, `host`, `service`, `event`, an unconsumed `message` or
//   `@timestamp`, `stream` when the source sets one, or a key the source's enrichment `fields` also sets.
//
// Everything else returns `undefined` and takes the general path, which stays the definition of the record. The
// differential test in test/unit/collector/fast-json-record.test.ts holds the two to the same bytes.
import { normalizeLevel, parseTimestamp, type LogLevel } from "../../record.js";
import { LEVEL_KEYS, MESSAGE_KEYS, TIMESTAMP_KEYS, type RecordContext } from "./build-record.js";

/** Deeper lines take the general path; the fast scanner recurses once per level. */
const FAST_MAX_DEPTH = 32;
/** Lines with more top-level keys take the general path (the key tables below are fixed-size). */
const MAX_TOP_KEYS = 64;

const enum T {
  STRING = 1,
  NUMBER = 2,
  LITERAL = 3,
  NESTED = 4,
}

/** Per-source constants of the record's tail, computed once from the context. */
export interface FastRecordPlan {
  readonly service: string;
  readonly host: string;
  readonly enrichment: string;
  readonly enrichmentKeys: ReadonlySet<string>;
  readonly filePath: string;
  readonly stream: string;
  readonly streamSet: boolean;
  readonly defaultLevel: LogLevel | undefined;
  readonly keepOriginal: boolean;
}

/**
 * Precompute the constant parts of every record of one source. Returns `undefined` when the context has
 * something the fast path does not reproduce (enrichment that is not plain JSON data), so that source always
 * takes the general path.
 */
export function planFastRecord(ctx: Omit<RecordContext, "now" | "offset">): FastRecordPlan | undefined {
  let enrichment = "";
  const enrichmentKeys = new Set<string>();
  if (ctx.fields !== undefined) {
    for (const key of Object.keys(ctx.fields)) {
      if (key === "__proto__") continue;
      if (isIndexLike(key)) return undefined; // a record puts such keys first
      // The builder merges these into objects it also writes; the general path keeps that logic.
      if (key === "log" || key === "service" || key === "host" || key === "event" || key === "stream") return undefined;
      if (key === "@timestamp" || key === "message" || key === "error") return undefined;
      const value = ctx.fields[key];
      if (!isJsonData(value, 32)) return undefined;
      enrichmentKeys.add(key);
      enrichment += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
    }
  }
  return {
    service: ctx.source === undefined ? "" : `,"service":{"name":${JSON.stringify(ctx.source)}}`,
    host: ctx.host === undefined ? "" : `,"host":{"name":${JSON.stringify(ctx.host)}}`,
    enrichment,
    enrichmentKeys,
    filePath: ctx.filePath === undefined ? "" : `"file":{"path":${JSON.stringify(ctx.filePath)}}`,
    stream: ctx.stream === undefined ? "" : `,"stream":${JSON.stringify(ctx.stream)}`,
    streamSet: ctx.stream !== undefined,
    defaultLevel: ctx.defaultLevel ?? (ctx.stream === "stderr" ? "warn" : undefined),
    keepOriginal: ctx.keepOriginal === true,
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
let src = "";
const keyStart = new Int32Array(MAX_TOP_KEYS);
const keyEnd = new Int32Array(MAX_TOP_KEYS);
const valStart = new Int32Array(MAX_TOP_KEYS);
const valEnd = new Int32Array(MAX_TOP_KEYS);
const valType = new Uint8Array(MAX_TOP_KEYS);
/** 1 when a top-level string value holds escapes (decoding it then needs JSON.parse). */
const valEscaped = new Uint8Array(MAX_TOP_KEYS);
/** Length and first/last character of each top-level key: most duplicate checks end here. */
const keySig = new Int32Array(MAX_TOP_KEYS);
/** Where each timestamp key (by its rank in TIMESTAMP_KEYS) sits; valid where the line's tsKeys bit is set. */
const tsIndex = new Int32Array(TIMESTAMP_KEYS.length);
/** Each top-level key's role (see ROLES), 0 for an ordinary field. */
const keyRole = new Uint8Array(MAX_TOP_KEYS);
/** Nested objects' key spans, a stack shared by all levels (for duplicate detection). */
let nestedKeys = new Int32Array(256);
let escaped = false;
/** Position of the next backslash in `src` at or after the scan position, -1 for none. */
let backslash = -1;
/** Whitespace between the top-level tokens: kept fields are then copied one by one, without it. */
let topWs = false;

/**
 * The record's JSON for `line`, or `undefined` when the general path must build it. `now` is the arrival time
 * (ISO) for lines without a usable timestamp, `offset` the line's file offset (or undefined).
 */
export function fastJsonRecord(line: string, plan: FastRecordPlan, now: string, offset: number | undefined): string | undefined {
  let n = line.length;
  if (n > 0 && line.charCodeAt(n - 1) === 13) {
    line = line.slice(0, -1);
    n--;
  }
  if (n < 2 || line.charCodeAt(0) !== 123 || line.charCodeAt(n - 1) !== 125) return undefined;
  if (line.includes("__proto__") || NOT_VERBATIM.test(line)) return undefined;
  src = line;
  backslash = line.indexOf("\\");
  const count = scanTop(n);
  src = "";
  if (count < 0) return undefined;

  // One role lookup per key; the candidates then win by the builder's priority order, not by position.
  let msgAt = -1;
  let msgRank = 99;
  let levelAt = -1;
  let levelRank = 99;
  let lineLevel: LogLevel | undefined;
  let tsKeys = 0; // bit r: TIMESTAMP_KEYS[r] is present, at tsIndex[r]
  let hasMessageKey = false;
  let hasTimestampKey = false;
  for (let i = 0; i < count; i++) {
    if (plan.enrichmentKeys.size > 0 && plan.enrichmentKeys.has(keyName(line, i))) return undefined;
    const role = keyRole[i]!;
    if (role === 0) continue;
    if (role === RESHAPED || (role === STREAM && plan.streamSet)) return undefined;
    if (role >= MSG_ROLE && role < MSG_ROLE + 10) {
      const rank = role - MSG_ROLE;
      if (rank === 0) hasMessageKey = true;
      const t = valType[i];
      if (rank < msgRank && (t === T.STRING || (rank === 0 && (t === T.NUMBER || isBoolean(line, i))))) {
        msgRank = rank;
        msgAt = i;
      }
    } else if (role >= LEVEL_ROLE && role < LEVEL_ROLE + 10) {
      const rank = role - LEVEL_ROLE;
      if (rank < levelRank) {
        const v = primitive(line, i);
        if (v === NESTED) return undefined;
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
  let message: string | undefined;
  if (msgAt >= 0) {
    message = valType[msgAt] === T.STRING ? line.slice(valStart[msgAt], valEnd[msgAt]) : JSON.stringify(line.slice(valStart[msgAt], valEnd[msgAt]));
  }
  const level = lineLevel ?? plan.defaultLevel;
  // Timestamps: the first key in priority order that parses wins (usually the first one tried).
  let tsAt = -1;
  let timestamp: string | undefined;
  if (tsKeys !== 0) {
    for (let r = 0; r < TIMESTAMP_KEYS.length; r++) {
      if ((tsKeys & (1 << r)) === 0) continue;
      const i = tsIndex[r]!;
      const v = primitive(line, i);
      if (v === NESTED) return undefined;
      if ((timestamp = parseTimestamp(v)) !== undefined) {
        tsAt = i;
        break;
      }
    }
  }
  // The builder moves an unconsumed `message` or `@timestamp` aside; leave that to it.
  if (hasMessageKey && (msgAt < 0 || keyRole[msgAt] !== MSG_ROLE)) return undefined;
  if (hasTimestampKey && (tsAt < 0 || keyRole[tsAt] !== TS_ROLE)) return undefined;

  let out = `{"@timestamp":"${timestamp ?? now}","message":${message ?? JSON.stringify(line)}`;
  // Kept fields go out verbatim. Without top-level whitespace, a run of consecutive kept fields is one slice.
  let runStart = -1;
  let runEnd = -1;
  for (let i = 0; i < count; i++) {
    if (i === msgAt || i === levelAt || i === tsAt) continue;
    const ks = keyStart[i]! - 1;
    if (topWs) {
      out += `,${line.slice(ks, keyEnd[i]! + 1)}:${line.slice(valStart[i], valEnd[i])}`;
      continue;
    }
    if (runStart >= 0 && ks === runEnd + 1) {
      runEnd = valEnd[i]!;
      continue;
    }
    if (runStart >= 0) out += `,${line.slice(runStart, runEnd)}`;
    runStart = ks;
    runEnd = valEnd[i]!;
  }
  if (runStart >= 0) out += `,${line.slice(runStart, runEnd)}`;

  let log = "";
  if (level !== undefined || plan.filePath !== "" || offset !== undefined) {
    log = `,"log":{`;
    let sep = "";
    if (level !== undefined) {
      log += `"level":"${level}"`;
      sep = ",";
    }
    if (plan.filePath !== "") {
      log += sep + plan.filePath;
      sep = ",";
    }
    if (offset !== undefined) log += `${sep}"offset":${offset}`;
    log += "}";
  }
  // Key order follows the builder: `log` is created by the level step when there is a level, else by the
  // file-path / offset step after service, host, event and enrichment.
  if (level !== undefined) out += log;
  out += plan.service + plan.host;
  if (plan.keepOriginal) out += `,"event":{"original":${JSON.stringify(line)}}`;
  out += plan.enrichment;
  if (level === undefined) out += log;
  return out + plan.stream + "}";
}

const NESTED = Symbol("nested");

/**
 * Characters the scanner never copies: raw control characters (invalid JSON) and surrogates (JSON.stringify
 * escapes lone ones, and a pair is rare enough to leave to the general path). One native regex pass, so the
 * scanner can find string ends with indexOf.
 */
const NOT_VERBATIM = /[\u0000-\u001f\ud800-\udfff]/;

function keyName(line: string, i: number): string {
  const raw = line.slice(keyStart[i]! - 1, keyEnd[i]! + 1);
  return raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
}

/** The role of the key spelled by `src[ks..ke)`, without slicing it: bucketed by length, then compared in place. */
function roleOf(ks: number, ke: number): number {
  const bucket = ROLES_BY_LENGTH[ke - ks];
  if (bucket === undefined) return 0;
  const first = src.charCodeAt(ks);
  for (let j = 0; j < bucket.length; j += 2) {
    const name = bucket[j] as string;
    if (name.charCodeAt(0) === first && src.startsWith(name, ks)) return bucket[j + 1] as number;
  }
  return 0;
}

// Roles of top-level keys: the builder's candidates (with their priority rank) and the keys it reshapes.
const RESHAPED = 1;
const STREAM = 2;
const MSG_ROLE = 10;
const LEVEL_ROLE = 20;
const TS_ROLE = 30;
const ROLES = new Map<string, number>([
  ["log", RESHAPED],
  ["host", RESHAPED],
  ["service", RESHAPED],
  ["event", RESHAPED],
  ["stream", STREAM],
  ["log.level", LEVEL_ROLE],
  ...LEVEL_KEYS.map((k, r): [string, number] => [k, LEVEL_ROLE + 1 + r]),
  ...MESSAGE_KEYS.filter((k) => k !== "log").map((k): [string, number] => [k, MSG_ROLE + MESSAGE_KEYS.indexOf(k)]),
  ...TIMESTAMP_KEYS.map((k, r): [string, number] => [k, TS_ROLE + r]),
]);
const ROLES_BY_LENGTH: (string | number)[][] = [];
for (const [name, role] of ROLES) (ROLES_BY_LENGTH[name.length] ??= []).push(name, role);

function isBoolean(line: string, i: number): boolean {
  return valType[i] === T.LITERAL && line.charCodeAt(valStart[i]!) !== 110; // true / false, not null
}

/** The decoded value of top-level value `i` when it is a string, number or literal; NESTED for objects/arrays. */
function primitive(line: string, i: number): unknown {
  const s = valStart[i]!;
  const e = valEnd[i]!;
  switch (valType[i]) {
    case T.STRING:
      // Canonical strings only hold \" \\ \b \f \n \r \t escapes; JSON.parse decodes them exactly.
    {
      return valEscaped[i] === 0 ? line.slice(s + 1, e - 1) : (JSON.parse(line.slice(s, e)) as string);
    }
    case T.NUMBER:
      return Number(line.slice(s, e));
    case T.LITERAL: {
      const c = line.charCodeAt(s);
      return c === 116 ? true : c === 102 ? false : null;
    }
    default:
      return NESTED;
  }
}

/** Scan the top-level object of `src[0..n)`. Returns the key count, or -1 when the fast path does not apply. */
function scanTop(n: number): number {
  let i = skipWs(1, n);
  let count = 0;
  topWs = i !== 1;
  if (src.charCodeAt(i) === 125) return skipWs(i + 1, n) === n ? 0 : -1;
  for (;;) {
    if (count === MAX_TOP_KEYS || src.charCodeAt(i) !== 34) return -1;
    const ks = i + 1;
    escaped = false;
    i = scanString(i, n);
    if (i < 0) return -1;
    const ke = i - 1;
    if (ke === ks || isDigit(src.charCodeAt(ks))) return -1;
    // Duplicate keys: JSON.parse keeps the last. Verbatim text compares exactly: the escapes allowed are canonical.
    const sig = ((ke - ks) << 16) ^ (src.charCodeAt(ks) << 8) ^ src.charCodeAt(ke - 1);
    for (let j = 0; j < count; j++) if (keySig[j] === sig && sameText(keyStart[j]!, keyEnd[j]!, ks, ke)) return -1;
    keySig[count] = sig;
    // Role names hold no escapes, so an escaped key is an ordinary field.
    keyRole[count] = escaped ? 0 : roleOf(ks, ke);
    if (src.charCodeAt(i) !== 58) {
      i = skipWs(i, n);
      topWs = true;
      if (src.charCodeAt(i) !== 58) return -1;
    }
    i++;
    if (isWs(src.charCodeAt(i))) {
      i = skipWs(i, n);
      topWs = true;
    }
    const vs = i;
    const c = src.charCodeAt(i);
    let type: T;
    if (c === 34) {
      escaped = false;
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
    let sep = src.charCodeAt(i);
    if (isWs(sep)) {
      i = skipWs(i, n);
      topWs = true;
      sep = src.charCodeAt(i);
    }
    if (sep === 44) {
      i++;
      if (isWs(src.charCodeAt(i))) {
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
 * A string starting at the quote at `i` (NOT_VERBATIM already excluded raw control characters and surrogates);
 * returns the index after its closing quote, or -1. Escapes must be ones JSON.stringify writes: \" \\ \b \f \n
 * \r \t (not \u, not \/). Sets `escaped` when it holds any.
 */
function scanString(i: number, n: number): number {
  let j = i + 1;
  for (;;) {
    const q = src.indexOf('"', j);
    if (q === -1) return -1;
    // The next backslash of the line, found once and reused by every string before it (most lines have none).
    if (backslash !== -1 && backslash < j) backslash = src.indexOf("\\", j);
    const b = backslash;
    if (b === -1 || b > q) return q + 1;
    const e = src.charCodeAt(b + 1);
    if (e !== 34 && e !== 92 && e !== 98 && e !== 102 && e !== 110 && e !== 114 && e !== 116) return -1;
    escaped = true;
    j = b + 2;
    if (j > n) return -1;
  }
}

/** An object or array at `i` (no whitespace inside, as JSON.stringify writes them). Returns its end or -1. */
function scanNested(i: number, n: number, depth: number, base: number): number {
  if (depth > FAST_MAX_DEPTH) return -1;
  const open = src.charCodeAt(i);
  const close = open === 123 ? 125 : 93;
  i++;
  if (src.charCodeAt(i) === close) return i + 1;
  let top = base;
  for (;;) {
    if (open === 123) {
      if (src.charCodeAt(i) !== 34) return -1;
      const ks = i;
      i = scanString(i, n);
      if (i < 0 || i - ks === 2 || isDigit(src.charCodeAt(ks + 1))) return -1;
      // Duplicate keys: JSON.parse keeps the last, a verbatim copy would keep both.
      for (let k = base; k < top; k += 2) if (sameText(nestedKeys[k]!, nestedKeys[k + 1]!, ks, i)) return -1;
      if (top + 2 > nestedKeys.length) {
        const grown = new Int32Array(nestedKeys.length * 2);
        grown.set(nestedKeys);
        nestedKeys = grown;
      }
      nestedKeys[top++] = ks;
      nestedKeys[top++] = i;
      if (src.charCodeAt(i) !== 58) return -1;
      i++;
    }
    const c = src.charCodeAt(i);
    if (c === 34) i = scanString(i, n);
    else if (c === 123 || c === 91) i = scanNested(i, n, depth + 1, top);
    else if (c === 45 || isDigit(c)) i = scanNumber(i, n);
    else i = scanLiteral(i, n);
    if (i < 0) return -1;
    const sep = src.charCodeAt(i);
    if (sep === 44) {
      i++;
      continue;
    }
    return sep === close ? i + 1 : -1;
  }
}

function sameText(a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (; a < aEnd; a++, b++) if (src.charCodeAt(a) !== src.charCodeAt(b)) return false;
  return true;
}

/**
 * A number in the exact form JSON.stringify(JSON.parse(text)) gives back: -?(0|[1-9]d*)(.d*[1-9])?, at most 15
 * significant digits (so the double keeps them all), no exponent, not -0, not below 1e-6 (written with an exponent).
 */
function scanNumber(i: number, n: number): number {
  const start = i;
  if (src.charCodeAt(i) === 45) i++;
  let c = src.charCodeAt(i);
  let significant = 0;
  if (c === 48) {
    i++;
  } else if (isDigit(c)) {
    while (i < n && isDigit(src.charCodeAt(i))) {
      i++;
      significant++;
    }
  } else {
    return -1;
  }
  c = src.charCodeAt(i);
  if (c === 46) {
    i++;
    const fracStart = i;
    let leadingZeros = 0;
    while (i < n && isDigit((c = src.charCodeAt(i)))) {
      if (significant === 0 && c === 48) leadingZeros++;
      else significant++;
      i++;
    }
    if (i === fracStart || src.charCodeAt(i - 1) === 48) return -1;
    if (significant === 0 || (src.charCodeAt(fracStart - 2) === 48 && leadingZeros >= 6)) return -1;
  } else if (significant === 0 && src.charCodeAt(start) === 45) {
    return -1; // -0
  }
  c = src.charCodeAt(i);
  if (c === 101 || c === 69 || significant > 15) return -1;
  return i;
}

function scanLiteral(i: number, n: number): number {
  const c = src.charCodeAt(i);
  const word = c === 116 ? "true" : c === 102 ? "false" : c === 110 ? "null" : undefined;
  if (word === undefined || i + word.length > n || !src.startsWith(word, i)) return -1;
  return i + word.length;
}

function skipWs(i: number, n: number): number {
  while (i < n && isWs(src.charCodeAt(i))) i++;
  return i;
}

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
