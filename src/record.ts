// The one record type that crosses the channel, the queues and the sinks: ECS-aligned so Elasticsearch needs no renaming.

/** Normalized severity. Sinks map it to their own scale (GELF: syslog numbers). */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal"];

/** The fields of a record, with the type of `log.level` as a parameter (normalized in records, any word in input). */
export interface RecordShape<Level> {
  "@timestamp": string;
  message: string;
  log?: {
    level?: Level;
    logger?: string;
    /** Byte offset of the line in its file (file sources only). */
    offset?: number;
    file?: { path?: string; device_id?: string; inode?: string; fingerprint?: string };
    [key: string]: unknown;
  };
  service?: { name?: string; [key: string]: unknown };
  host?: { name?: string; [key: string]: unknown };
  event?: { original?: string; dataset?: string; [key: string]: unknown };
  [field: string]: unknown;
}

/**
 * An ECS-aligned log record. Known fields are typed; parsed fields from the line sit beside them.
 * `@timestamp` is an ISO 8601 string (from the line when the parser finds one, else arrival time).
 */
export interface LogRecord extends RecordShape<LogLevel> {}

/**
 * Input accepted where a record is expected: `@timestamp` and `message` are filled in when missing, and `log.level`
 * may be any level word (`"WARNING"`, `"err"`, `"Information"`): it is normalized, or dropped if it is none.
 */
export type LogRecordInput = Partial<RecordShape<LogLevel | (string & {})>> & Record<string, unknown>;

// Null prototype: a level word such as "constructor" or "__proto__" must not hit Object.prototype members.
const LEVEL_WORDS: Record<string, LogLevel | undefined> = Object.assign(Object.create(null) as Record<string, LogLevel>, {
  trace: "trace", trc: "trace", verbose: "trace", finest: "trace", finer: "trace", silly: "trace", v: "trace",
  // winston's `http` sits between info and verbose; log15 writes `dbug`.
  debug: "debug", dbg: "debug", dbug: "debug", http: "debug", fine: "debug", config: "debug", d: "debug",
  info: "info", inf: "info", information: "info", informational: "info", notice: "info", log: "info", i: "info",
  warn: "warn", warning: "warn", wrn: "warn", w: "warn",
  error: "error", err: "error", eror: "error", severe: "error", e: "error", dpanic: "error",
  fatal: "fatal", ftl: "fatal", crit: "fatal", critical: "fatal", alert: "fatal", emerg: "fatal",
  emergency: "fatal", panic: "fatal", f: "fatal",
} satisfies Record<string, LogLevel>);

// Syslog severity (RFC 5424): 0 emerg … 7 debug.
const SYSLOG: readonly LogLevel[] = ["fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug"];

/**
 * Normalize a level from any common convention: words (`WARNING`, `ERR`, `Informational`), syslog
 * severities 0–7, and pino/bunyan numbers (10 trace … 60 fatal). Returns `undefined` when unknown.
 */
export function normalizeLevel(value: unknown): LogLevel | undefined {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return undefined;
    if (Number.isInteger(value) && value >= 0 && value <= 7) return SYSLOG[value];
    // pino / bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal (values between round down).
    if (value >= 10) {
      if (value < 20) return "trace";
      if (value < 30) return "debug";
      if (value < 40) return "info";
      if (value < 50) return "warn";
      if (value < 60) return "error";
      return "fatal";
    }
    return undefined;
  }
  if (typeof value !== "string") return undefined;
  const word = value.trim().toLowerCase();
  if (word.length === 0) return undefined;
  const hit = LEVEL_WORDS[word];
  if (hit !== undefined) return hit;
  if (/^\d+$/.test(word)) return normalizeLevel(Number(word));
  return undefined;
}

/** Syslog numeric severity for a normalized level (GELF `level`). */
export function syslogSeverity(level: LogLevel | undefined): number {
  switch (level) {
    case "fatal": return 2;
    case "error": return 3;
    case "warn": return 4;
    case "debug":
    case "trace": return 7;
    default: return 6;
  }
}

// Apache / nginx `$time_local` (Common Log Format): 15/Jan/2024:10:00:00 +0000
const CLF = /^(\d{2})\/([A-Za-z]{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?: ([+-])(\d{2})(\d{2}))?$/;
const MONTHS: Record<string, number | undefined> = Object.assign(Object.create(null) as Record<string, number>, {
  jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12,
});
const NUMERIC = /^\d+(\.\d+)?$/;
// Years past 9999 would serialize as "+010000-…", which Elasticsearch and most consumers reject.
const MAX_EPOCH_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * Parse a timestamp into an ISO 8601 UTC string with millisecond precision. Accepts:
 * - ISO 8601 / RFC 3339, also with a space for `T`, `,` before the fraction, lowercase `t`/`z`, `UTC`,
 *   `+hh`, `+hhmm` or `+hh:mm` offsets, and date only; without a zone the time is read as UTC (never
 *   the host's local zone, so results are the same on every machine);
 * - Common Log Format `15/Jan/2024:10:00:00 +0000` (nginx/Apache `time_local`);
 * - `Date`, and epoch numbers, bigints or numeric strings in seconds, milliseconds, microseconds or
 *   nanoseconds, told apart by magnitude (< 1e11 s, < 1e14 ms, < 1e17 µs, else ns).
 * Sub-millisecond digits are truncated (not rounded). Returns `undefined` when the value is not a valid
 * timestamp (calendar-invalid dates such as Feb 30 included) or lies outside years 0000–9999.
 */
export function parseTimestamp(value: unknown): string | undefined {
  if (value instanceof Date) return fromMs(value.getTime());
  if (typeof value === "bigint") return value < 0n ? undefined : fromEpoch(Number(value));
  if (typeof value === "number") return fromEpoch(value);
  if (typeof value !== "string") return undefined;
  const s = value.length > 0 && (value.charCodeAt(0) <= 32 || value.charCodeAt(value.length - 1) <= 32) ? value.trim() : value;
  if (s.length === 0 || s.length > 64) return undefined;
  const c = s.charCodeAt(0);
  if (c < 48 || c > 57) return undefined;
  if (NUMERIC.test(s)) return fromEpochString(s);
  const iso = parseIso(s);
  if (iso !== null) return iso;
  const m = CLF.exec(s);
  if (m !== null) {
    const month = MONTHS[m[2]!.toLowerCase()];
    if (month === undefined) return undefined;
    const offsetMin = m[7] === undefined ? 0 : (m[7] === "-" ? -1 : 1) * (+m[8]! * 60 + +m[9]!);
    return fromParts(+m[3]!, month, +m[1]!, +m[4]!, +m[5]!, +m[6]!, 0, offsetMin);
  }
  return undefined;
}

/**
 * ISO 8601 / RFC 3339 and the relaxations seen in logs: space instead of `T`, comma before the fraction (Python's
 * and log4j's default), lowercase `t`/`z`, `UTC`, an optional space before the zone, `+hh`, `+hhmm`, `+hh:mm`, date
 * only. Hand-scanned rather than a regex with captures: this runs once per line. Returns `null` when `s` does not
 * have the shape, `undefined` when it has the shape but is not a valid date.
 */
function parseIso(s: string): string | undefined | null {
  const n = s.length;
  if (n < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return null;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 0 || mo < 0 || d < 0) return null;
  let h = 0, mi = 0, sec = 0, ms = 0, offsetMin = 0;
  let i = 10;
  let c = s.charCodeAt(i);
  if (i < n && (c === 84 || c === 116 || c === 32) && digits(s, i + 1, 2) >= 0) {
    // [Tt ]hh:mm[:ss[(.|,)fraction]]
    h = digits(s, i + 1, 2);
    mi = s.charCodeAt(i + 3) === 58 ? digits(s, i + 4, 2) : -1;
    if (mi < 0) return null;
    i += 6;
    if (s.charCodeAt(i) === 58) {
      sec = digits(s, i + 1, 2);
      if (sec < 0) return null;
      i += 3;
      c = s.charCodeAt(i);
      if (c === 46 || c === 44) {
        const start = ++i;
        while (i < n && (c = s.charCodeAt(i)) >= 48 && c <= 57) i++;
        const len = i - start;
        if (len === 0) return null;
        // Truncate to milliseconds: the first three digits, right-padded.
        ms = digits(s, start, Math.min(len, 3)) * (len === 1 ? 100 : len === 2 ? 10 : 1);
      }
    }
  }
  if (i < n && s.charCodeAt(i) === 32 && i + 1 < n) i++;
  if (i < n) {
    c = s.charCodeAt(i);
    if (c === 90 || c === 122) {
      i++;
    } else if (c === 85 && s.startsWith("UTC", i)) {
      i += 3;
    } else if (c === 43 || c === 45) {
      const oh = digits(s, i + 1, 2);
      if (oh < 0) return null;
      i += 3;
      let om = 0;
      if (s.charCodeAt(i) === 58) {
        om = digits(s, i + 1, 2);
        if (om < 0) return null;
        i += 3;
      } else if (i < n) {
        om = digits(s, i, 2);
        if (om < 0) return null;
        i += 2;
      }
      if (oh > 23 || om > 59) return undefined;
      offsetMin = (c === 45 ? -1 : 1) * (oh * 60 + om);
    }
  }
  if (i !== n) return null;
  return fromParts(y, mo, d, h, mi, sec, ms, offsetMin);
}

// The value of `len` ASCII digits at `at`, or -1 when any is not a digit (or out of range).
function digits(s: string, at: number, len: number): number {
  if (at + len > s.length) return -1;
  let v = 0;
  for (let k = at; k < at + len; k++) {
    const c = s.charCodeAt(k) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function fromParts(y: number, mo: number, d: number, h: number, mi: number, sec: number, ms: number, offsetMin: number): string | undefined {
  // Date.UTC silently rolls Feb 30 over to Mar 1; a log line with an impossible date is not a timestamp.
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || sec > 60) return undefined;
  // Plain arithmetic instead of Date objects: this runs per line, and Date + toISOString cost several times more.
  // (Second 60, a leap second, rolls into the next minute.)
  return fromMs(daysFromCivil(y, mo, d) * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000 + ms - offsetMin * 60_000);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; valid for every year we accept).
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function daysInMonth(y: number, mo: number): number {
  if (mo === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return mo === 4 || mo === 6 || mo === 9 || mo === 11 ? 30 : 31;
}

function fromEpoch(n: number): string | undefined {
  const ms = epochMs(n);
  return ms === undefined ? undefined : isoFromMs(ms);
}

/**
 * The whole epoch milliseconds of a numeric timestamp in seconds, milliseconds, microseconds or nanoseconds (told
 * apart by magnitude), or `undefined` where `parseTimestamp` refuses the number. `isoFromMs` of it is what
 * `parseTimestamp` returns.
 */
export function epochMs(n: number): number | undefined {
  if (!Number.isFinite(n) || n < 0) return undefined;
  let ms: number;
  // Seconds with a fraction: go through whole microseconds so 1700000000.123 does not become …122.999.
  if (n < 1e11) ms = Math.floor(Math.round(n * 1e6) / 1e3);
  else if (n < 1e14) ms = Math.floor(n); // milliseconds
  else if (n < 1e17) ms = Math.floor(n / 1e3); // microseconds
  else ms = Math.floor(n / 1e6); // nanoseconds
  if (!Number.isFinite(ms) || ms > MAX_EPOCH_MS || ms < MIN_EPOCH_MS) return undefined;
  return ms;
}

// Numeric strings: split at the decimal point so long nanosecond values keep their millisecond digits exactly.
function fromEpochString(s: string): string | undefined {
  const dot = s.indexOf(".");
  const int = dot === -1 ? s : s.slice(0, dot);
  const digits = int.replace(/^0+(?=\d)/, "");
  if (digits.length > 21) return undefined;
  const n = Number(int);
  if (n < 1e11) {
    const frac = dot === -1 ? "" : s.slice(dot + 1);
    return fromMs(n * 1000 + (frac.length === 0 ? 0 : Number(frac.slice(0, 3).padEnd(3, "0"))));
  }
  // ms / µs / ns: keep the integer part only, dropping the sub-ms digits as text (exact for any length).
  let msDigits: string;
  if (n < 1e14) msDigits = digits;
  else if (n < 1e17) msDigits = digits.slice(0, -3);
  else msDigits = digits.slice(0, -6);
  return fromMs(Number(msDigits));
}

const MIN_EPOCH_MS = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z

function fromMs(ms: number): string | undefined {
  if (!Number.isFinite(ms) || ms > MAX_EPOCH_MS || ms < MIN_EPOCH_MS) return undefined;
  return isoFromMs(Math.floor(ms));
}

// Lines arrive in time order, many per second: the date-and-time part is computed once per second.
let cachedSecond = Number.NaN;
let cachedPrefix = "";
const MILLIS: readonly string[] = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, "0")}Z`);

/** Same output as `new Date(ms).toISOString()` for years 0000–9999, without allocating a Date (a hot path). */
function isoFromMs(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedPrefix = secondPrefix(second);
    cachedSecond = second;
  }
  return cachedPrefix + MILLIS[ms - second * 1000]!;
}

// The same, written as bytes (the collectors' fast path): no string per line, the second's prefix kept as bytes.
let bytesSecond = Number.NaN;
const bytesPrefix = Buffer.alloc(20);

/** Write `isoFromMs(ms)` (24 ASCII bytes) into `out` at `p`; returns the end. `ms` as `epochMs` returns it. */
export function writeIsoFromMs(ms: number, out: Buffer, p: number): number {
  const second = Math.floor(ms / 1000);
  if (second !== bytesSecond) {
    bytesPrefix.write(secondPrefix(second), 0, "latin1");
    bytesSecond = second;
  }
  out.set(bytesPrefix, p);
  p += 20;
  const r = ms - second * 1000;
  out[p++] = 48 + Math.floor(r / 100);
  out[p++] = 48 + (Math.floor(r / 10) % 10);
  out[p++] = 48 + (r % 10);
  out[p++] = 90; // Z
  return p;
}

/** `YYYY-MM-DDTHH:MM:SS.` for a whole second since the epoch (20 characters for years 0000–9999). */
function secondPrefix(second: number): string {
  const days = Math.floor(second / 86_400);
  let rem = second - days * 86_400;
  const h = Math.floor(rem / 3_600);
  rem -= h * 3_600;
  const mi = Math.floor(rem / 60);
  const sec = rem - mi * 60;
  // Civil date from days since the epoch (H. Hinnant's algorithm).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return (
    (y < 10 ? "000" : y < 100 ? "00" : y < 1000 ? "0" : "") + y + "-" + pad2(m) + "-" + pad2(d) + "T" + pad2(h) + ":" +
    pad2(mi) + ":" + pad2(sec) + "."
  );
}

function pad2(n: number): string {
  return n < 10 ? "0" + n : "" + n;
}
