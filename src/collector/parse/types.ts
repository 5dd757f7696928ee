// The shapes shared by every line parser and the record builder, kept apart so parsers do not import each other.
import type { LogLevel } from "../../record.js";

/** Why a line could not be parsed. The line is still delivered, as a plain message; the caller counts the reason. */
export type ParseErrorReason =
  /** `json`: not valid JSON. */
  | "invalid_json"
  /** `json`: valid JSON, but not an object (`42`, `"text"`, `[1, 2]`). */
  | "not_an_object"
  /** `json`: nested deeper than {@link MAX_JSON_DEPTH}; such a record could not be serialized again. */
  | "too_deep"
  /** `logfmt`: the line holds no `key=value` pair. */
  | "not_logfmt"
  /** `syslog`: the line is neither RFC 5424 nor BSD syslog. */
  | "not_syslog"
  /** `{ regex }`: the expression did not match. */
  | "no_match"
  /** function parser: it threw. */
  | "parser_threw"
  /** function parser: it returned something other than a plain object, `null` or `undefined`. */
  | "invalid_result";

/**
 * What a parser made of one line (or one multiline event). Parsers never throw on bad input.
 *
 * - `fields`: the structure found in the line, or `undefined` for a plain message (parser `"plain"`,
 *   a blank line, a parse error, or a function parser that returned `null`/`undefined`).
 * - `error`: set when the parser failed; `fields` is then `undefined` and the line becomes the message.
 * - `level`: a level the parser sniffed outside `fields` (the plain parser's leading `ERROR`, `[WARN]` …).
 * - `blank`: the line is empty or only whitespace. Collectors normally skip such lines (Filebeat does);
 *   they are never a parse error.
 * - `droppedKeys`: how many `__proto__` keys were removed from `fields` (see {@link buildRecord}).
 */
export interface ParsedLine {
  /** The input line, without a trailing `\r`. */
  line: string;
  fields: Record<string, unknown> | undefined;
  error?: ParseErrorReason;
  level?: LogLevel;
  blank?: true;
  droppedKeys?: number;
}

/** A compiled parser: one call per line, never throws. */
export type Parser = (line: string) => ParsedLine;

/** A user-supplied parse function (ScriptSource). See {@link createParser} for how its results are read. */
export type ParseFunction = (line: string) => Record<string, unknown> | null | undefined;

/** The regex form of {@link ParserSpec}: the expression must have at least one named group. */
export interface RegexParserSpec {
  /** Pattern source or a RegExp. Named groups become fields; group `message`, `level`, `timestamp` … feed the record. */
  regex: string | RegExp;
  /**
   * Flags. Replace the RegExp's own flags when given. `g` and `y` are removed (they make matching stateful).
   * Use `s` for multiline events, so that `.` also matches the newlines that join their lines.
   * @default "" (or the RegExp's own flags)
   */
  flags?: string;
}

/** The syslog parser with options (`"syslog"` is the same with none). */
export interface SyslogParserSpec {
  syslog: {
    /**
     * The IANA zone (`"Europe/Berlin"`) of BSD timestamps, which carry none: the zone the senders' clocks show.
     * RFC 5424 and RFC 3339 timestamps carry their own offset and are not affected. @default "UTC"
     */
    timezone?: string;
  };
}

/** How a collector turns a line into fields. */
export type ParserSpec = "json" | "logfmt" | "plain" | "syslog" | SyslogParserSpec | RegexParserSpec | ParseFunction;

/** JSON nested deeper than this is a parse error: `JSON.stringify` overflows the stack at a few thousand levels. */
export const MAX_JSON_DEPTH = 1000;
