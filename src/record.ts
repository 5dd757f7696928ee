// The one record type that crosses the channel, the queues and the sinks: ECS-aligned so Elasticsearch needs no renaming.

/** Normalized severity. Sinks map it to their own scale (GELF: syslog numbers). */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal"];

/**
 * An ECS-aligned log record. Known fields are typed; parsed fields from the line sit beside them.
 * `@timestamp` is an ISO 8601 string (from the line when the parser finds one, else arrival time).
 */
export interface LogRecord {
  "@timestamp": string;
  message: string;
  log?: {
    level?: LogLevel;
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

/** Input accepted where a record is expected: `@timestamp` and `message` are filled in when missing. */
export type LogRecordInput = Partial<LogRecord> & Record<string, unknown>;

const LEVEL_WORDS: Record<string, LogLevel> = {
  trace: "trace", trc: "trace", verbose: "trace", finest: "trace", finer: "trace", silly: "trace",
  debug: "debug", dbg: "debug", fine: "debug", config: "debug", d: "debug",
  info: "info", inf: "info", information: "info", informational: "info", notice: "info", log: "info", i: "info",
  warn: "warn", warning: "warn", wrn: "warn", w: "warn",
  error: "error", err: "error", eror: "error", severe: "error", e: "error",
  fatal: "fatal", ftl: "fatal", crit: "fatal", critical: "fatal", alert: "fatal", emerg: "fatal",
  emergency: "fatal", panic: "fatal", f: "fatal",
};

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

const ISO_LIKE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parse a timestamp into an ISO 8601 UTC string. Accepts ISO 8601 (with or without zone; no zone
 * means UTC), `Date`, and epoch numbers or numeric strings in seconds, milliseconds, microseconds or
 * nanoseconds (told apart by magnitude). Returns `undefined` when the value is not a timestamp.
 */
export function parseTimestamp(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  if (typeof value === "bigint") return fromEpoch(Number(value));
  if (typeof value === "number") return fromEpoch(value);
  if (typeof value !== "string") return undefined;
  const s = value.trim();
  if (s.length === 0) return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return fromEpoch(Number(s));
  if (ISO_LIKE.test(s)) {
    // A zone-less timestamp is read as UTC, never in the host's local zone (reproducible across machines).
    const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(s);
    const normalized = s.replace(" ", "T") + (hasZone ? "" : "Z");
    const ms = Date.parse(normalized.replace(/([+-]\d{2})(\d{2})$/, "$1:$2"));
    if (Number.isNaN(ms)) return undefined;
    // Keep sub-millisecond digits that Date drops? ES date_nanos would; ECS asks for ms, so ms it is.
    return new Date(ms).toISOString();
  }
  return undefined;
}

function fromEpoch(n: number): string | undefined {
  if (!Number.isFinite(n) || n < 0) return undefined;
  let ms: number;
  if (n < 1e11) ms = n * 1000; // seconds (until year 5138)
  else if (n < 1e14) ms = n; // milliseconds
  else if (n < 1e17) ms = n / 1e3; // microseconds
  else ms = n / 1e6; // nanoseconds
  const d = new Date(Math.floor(ms));
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
