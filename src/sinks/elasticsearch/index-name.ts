// Index naming for the Elasticsearch sink: Logstash/Filebeat-style patterns compiled once, index-name rules checked before sending.
import { InvalidOptionError } from "../../errors.js";
import { describe } from "../../pipeline/serialize.js";
import type { LogRecord } from "../../record.js";
import { parseTimestamp } from "../../record.js";

/**
 * Elasticsearch's rules for index, alias and data stream names (MetadataCreateIndexService):
 * lowercase, none of `\ / * ? " < > | , # :` or space, not starting with `-`, `_` or `+`, not `.` or `..`,
 * at most 255 bytes. Returns why the name is invalid, or `undefined` when it is fine.
 */
export function indexNameProblem(name: string): string | undefined {
  if (name.length === 0) return "must not be empty";
  if (name !== name.toLowerCase()) return "must be lowercase";
  if (/[\\/*?"<>| ,#:]/.test(name)) return 'must not contain \\, /, *, ?, ", <, >, |, space, comma, # or :';
  if (/^[-_+]/.test(name)) return "must not start with -, _ or +";
  if (name === "." || name === "..") return "must not be . or ..";
  if (Buffer.byteLength(name) > 255) return "must be at most 255 bytes";
  return undefined;
}

type Segment =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "date"; readonly tokens: readonly DateToken[] }
  | { readonly kind: "field"; readonly path: readonly string[]; readonly label: string };

type DateToken = string | "yyyy" | "YYYY" | "yy" | "xxxx" | "ww" | "MM" | "dd" | "HH";

const DATE_TOKENS = ["yyyy", "YYYY", "xxxx", "yy", "ww", "MM", "dd", "HH"] as const;

/**
 * A compiled index pattern. `%{+yyyy.MM.dd}` formats the record's `@timestamp` in UTC with Joda tokens
 * (`yyyy`/`YYYY`, `yy`, `MM`, `dd`, `HH`, ISO week-year `xxxx` and week `ww`); `%{[service][name]}` or
 * `%{[service.name]}` inserts a field of the record; everything else is literal text.
 */
export interface IndexPattern {
  /** True when the pattern contains no `%{…}` at all. */
  readonly isStatic: boolean;
  /** True when a field reference needs the parsed record (a date alone only needs `@timestamp`). */
  readonly needsRecord: boolean;
  /** True when a date token is present (the caller passes the record's timestamp). */
  readonly needsTimestamp: boolean;
  /**
   * The index for one record, or `{ problem }` when it cannot be built (missing field, invalid name).
   * `isoTimestamp` must be a canonical ISO string (`Date#toISOString`) when `needsTimestamp`.
   */
  render(isoTimestamp: string, record: LogRecord | undefined): string | { problem: string };
}

/** Compile `pattern` once; throws `InvalidOptionError` on unknown syntax or when the static parts break the naming rules. */
export function compileIndexPattern(pattern: string, optionName: string): IndexPattern {
  if (typeof pattern !== "string" || pattern.length === 0) {
    throw new InvalidOptionError(`Expected \`${optionName}\` to be a non-empty string, got ${describe(pattern)}`);
  }
  const segments: Segment[] = [];
  const re = /%\{([^}]*)\}/g;
  let last = 0;
  for (let m = re.exec(pattern); m !== null; m = re.exec(pattern)) {
    if (m.index > last) segments.push({ kind: "text", text: pattern.slice(last, m.index) });
    const inner = m[1]!;
    if (inner.startsWith("+")) segments.push({ kind: "date", tokens: parseDateFormat(inner.slice(1), pattern, optionName) });
    else segments.push(parseFieldRef(inner, pattern, optionName));
    last = m.index + m[0].length;
  }
  if (last < pattern.length) segments.push({ kind: "text", text: pattern.slice(last) });
  if (segments.some((s) => s.kind === "text" && s.text.includes("%{"))) {
    throw new InvalidOptionError(`Expected \`${optionName}\` to close every \`%{\` with \`}\`, got ${describe(pattern)}`);
  }

  const isStatic = segments.every((s) => s.kind === "text");
  const needsRecord = segments.some((s) => s.kind === "field");
  const needsTimestamp = segments.some((s) => s.kind === "date");
  // Check the literal parts with a sample date, so a pattern like `Logs-%{+yyyy}` fails at construction, not per record.
  const literal = segments.map((s) => (s.kind === "text" ? s.text : s.kind === "date" ? formatDate(Date.UTC(2024, 0, 2, 3), s.tokens) : "x")).join("");
  const problem = indexNameProblem(literal);
  if (problem !== undefined) {
    throw new InvalidOptionError(`Expected \`${optionName}\` to produce a valid index name (${problem}), got ${describe(pattern)}`);
  }

  // Date parts change at most hourly: cache the rendered name per hour of the timestamp ("2024-05-01T12").
  const cache = new Map<string, string>();
  return {
    isStatic,
    needsRecord,
    needsTimestamp,
    render(isoTimestamp, record) {
      if (isStatic) return pattern;
      const hourKey = needsTimestamp ? isoTimestamp.slice(0, 13) : "";
      if (!needsRecord) {
        const hit = cache.get(hourKey);
        if (hit !== undefined) return hit;
      }
      let ms = NaN;
      if (needsTimestamp) ms = Date.parse(isoTimestamp);
      let out = "";
      for (const s of segments) {
        if (s.kind === "text") out += s.text;
        else if (s.kind === "date") out += formatDate(ms, s.tokens);
        else {
          const value = lookup(record, s.path);
          if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") out += String(value);
          else return { problem: `index pattern field [${s.label}] is ${value === undefined ? "missing" : "not a string or number"}` };
        }
      }
      if (needsRecord) {
        const bad = indexNameProblem(out);
        // The name comes from the record: quote a bounded part of it (it goes into an error and a drop event).
        return bad === undefined ? out : { problem: `invalid index name ${JSON.stringify(out.length > 300 ? `${out.slice(0, 300)}…` : out)}: ${bad}` };
      }
      if (cache.size >= 1024) cache.clear();
      cache.set(hourKey, out);
      return out;
    },
  };
}

function parseDateFormat(format: string, pattern: string, optionName: string): DateToken[] {
  const tokens: DateToken[] = [];
  let i = 0;
  outer: while (i < format.length) {
    for (const t of DATE_TOKENS) {
      if (format.startsWith(t, i)) {
        tokens.push(t);
        i += t.length;
        continue outer;
      }
    }
    const ch = format[i]!;
    if (/[A-Za-z]/.test(ch)) {
      throw new InvalidOptionError(
        `Expected \`${optionName}\` date format to use yyyy, YYYY, yy, xxxx, ww, MM, dd, HH and punctuation, got ${describe(pattern)}`,
      );
    }
    tokens.push(ch);
    i++;
  }
  if (tokens.length === 0) throw new InvalidOptionError(`Expected \`${optionName}\` to have a date format after \`%{+\`, got ${describe(pattern)}`);
  return tokens;
}

function parseFieldRef(inner: string, pattern: string, optionName: string): Segment {
  // Logstash field references: [a][b] (nested) or [a.b] (dotted path; tried both nested and as a flat key).
  if (!/^(\[[^[\]]+\])+$/.test(inner)) {
    throw new InvalidOptionError(
      `Expected \`${optionName}\` to contain only %{+dateformat} or %{[field][path]} references, got ${describe(pattern)}`,
    );
  }
  const parts = inner.slice(1, -1).split("][");
  return { kind: "field", path: parts, label: parts.join(".") };
}

function lookup(record: LogRecord | undefined, path: readonly string[]): unknown {
  if (record === undefined) return undefined;
  let cur: unknown = record;
  for (const part of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    const obj = cur as Record<string, unknown>;
    if (part in obj) cur = obj[part];
    else if (part.includes(".")) cur = lookup(obj as LogRecord, part.split("."));
    else return undefined;
  }
  return cur;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** Format epoch ms in UTC with the compiled tokens. */
function formatDate(ms: number, tokens: readonly DateToken[]): string {
  const d = new Date(ms);
  let out = "";
  for (const t of tokens) {
    switch (t) {
      case "yyyy":
      case "YYYY": out += pad(d.getUTCFullYear(), 4); break;
      case "yy": out += pad(d.getUTCFullYear() % 100, 2); break;
      case "MM": out += pad(d.getUTCMonth() + 1, 2); break;
      case "dd": out += pad(d.getUTCDate(), 2); break;
      case "HH": out += pad(d.getUTCHours(), 2); break;
      case "xxxx": out += pad(isoWeek(d).year, 4); break;
      case "ww": out += pad(isoWeek(d).week, 2); break;
      default: out += t;
    }
  }
  return out;
}

/** ISO 8601 week and week-based year (weeks start on Monday; week 1 holds the year's first Thursday). */
function isoWeek(d: Date): { year: number; week: number } {
  // The day at midnight, by copying rather than Date.UTC(y, …), which reads years 0–99 as 1900–1999.
  const t = new Date(d.getTime());
  t.setUTCHours(0, 0, 0, 0);
  const day = t.getUTCDay() === 0 ? 7 : t.getUTCDay();
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const start = new Date(0);
  start.setUTCFullYear(t.getUTCFullYear(), 0, 1);
  const yearStart = start.getTime();
  return { year: t.getUTCFullYear(), week: Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7) };
}

const CANONICAL_TS_PREFIX = '{"@timestamp":"';
const CANONICAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * The record's `@timestamp` as a canonical ISO string, read from the JSON text without parsing when the
 * engine put `@timestamp` first (the common case), else from the record. `undefined` when it has none.
 */
export function recordTimestamp(json: string, getRecord: () => LogRecord): string | undefined {
  if (json.startsWith(CANONICAL_TS_PREFIX)) {
    const end = json.indexOf('"', CANONICAL_TS_PREFIX.length);
    const ts = json.slice(CANONICAL_TS_PREFIX.length, end);
    if (CANONICAL_ISO.test(ts)) return ts;
  }
  const value = getRecord()["@timestamp"];
  return parseTimestamp(value);
}
