// Child-side parsing: compile a ParserSpec once into a per-line function, and build ECS records from its output.
//
//   bytes ─▶ LineSplitter ─▶ MultilineJoiner (optional) ─▶ Parser ─▶ buildRecord ─▶ channel frame
//
// Multiline joining runs on raw text before parsing, so a Java trace under a plain or regex parser stays one event.
import { InvalidOptionError } from "../../errors.js";
import { describe } from "../../pipeline/serialize.js";
import { checkKeys, optionKeys } from "../../util/validate.js";
import { parseJson } from "./json.js";
import { parseLogfmt } from "./logfmt.js";
import { parsePlain } from "./plain.js";
import { createRegexParser } from "./regex.js";
import { stripProtoKeys } from "./safe-keys.js";
import { checkTimeZone, parseSyslog } from "./syslog.js";
import { isBlank, stripCR } from "./text.js";
import type { ParseFunction, ParsedLine, Parser, ParserSpec, SyslogParserSpec } from "./types.js";

export type { ParseErrorReason, ParsedLine, Parser, ParseFunction, ParserSpec, RegexParserSpec, SyslogParserSpec } from "./types.js";
export { MAX_JSON_DEPTH } from "./types.js";
export { buildRecord, flagRecord, mergeFields, MESSAGE_KEYS, LEVEL_KEYS, TIMESTAMP_KEYS, type RecordContext } from "./build-record.js";
export { parseJson } from "./json.js";
export { parseLogfmt } from "./logfmt.js";
export { parsePlain, sniffLevel } from "./plain.js";
export { createRegexParser } from "./regex.js";
export { parseSyslog } from "./syslog.js";

// A function parser's result is user data of unknown shape: bound the __proto__ walk.
const FUNCTION_WALK_DEPTH = 64;
const FUNCTION_WALK_NODES = 10_000;

/**
 * Validate a parser spec and compile it. Throws `InvalidOptionError` synchronously for a bad spec; the returned
 * parser never throws.
 *
 * - `"json"`, `"logfmt"`, `"plain"`, `"syslog"`: see `parseJson`, `parseLogfmt`, `parsePlain`, `parseSyslog`.
 * - `{ regex, flags? }`: see `createRegexParser` (named groups required).
 * - `{ syslog: { timezone? } }`: `parseSyslog` with the zone of BSD timestamps.
 * - a function `(line) => fields`: a plain object (or null-prototype object) becomes the fields; `null` or
 *   `undefined` means "no structure", the line stays a plain message and it is *not* an error; throwing gives
 *   `error: "parser_threw"`, any other return value (string, array, number) `error: "invalid_result"`.
 *
 * Every parser returns `blank: true` (never an error) for empty or whitespace-only lines, and strips one trailing
 * `\r`. `optionName` names the option in error messages.
 */
export function createParser(spec: ParserSpec, optionName = "parser"): Parser {
  if (spec === "json") return parseJson;
  if (spec === "logfmt") return parseLogfmt;
  if (spec === "plain") return parsePlain;
  if (spec === "syslog") return syslogParser;
  if (typeof spec === "function") return functionParser(spec);
  if (typeof spec === "object" && spec !== null && !Array.isArray(spec) && "syslog" in spec) {
    checkKeys(optionName, spec, SYSLOG_KEYS);
    const o: unknown = spec.syslog;
    if (o === null || typeof o !== "object" || Array.isArray(o)) {
      throw new InvalidOptionError(`Expected \`${optionName}.syslog\` to be an object ({ timezone }), got ${describe(o)}`);
    }
    checkKeys(`${optionName}.syslog`, o, SYSLOG_OPTION_KEYS);
    const timeZone = (o as { timezone?: unknown }).timezone;
    if (timeZone === undefined) return syslogParser;
    if (typeof timeZone !== "string" || !checkTimeZone(timeZone)) {
      throw new InvalidOptionError(`Expected \`${optionName}.syslog.timezone\` to be an IANA time zone such as "Europe/Berlin", got ${describe(timeZone)}`);
    }
    return (line) => parseSyslog(line, Date.now(), timeZone);
  }
  if (typeof spec === "object" && spec !== null && !Array.isArray(spec) && "regex" in spec) {
    return createRegexParser(spec, optionName);
  }
  throw new InvalidOptionError(
    `Expected \`${optionName}\` to be "json", "logfmt", "plain", "syslog", { syslog }, { regex } or a function, got ${describe(spec)}`,
  );
}

const SYSLOG_KEYS = optionKeys<SyslogParserSpec>()(["syslog"]);
const SYSLOG_OPTION_KEYS = optionKeys<SyslogParserSpec["syslog"]>()(["timezone"]);

/** parseSyslog with the clock read per line (its `now` argument is for tests). */
const syslogParser: Parser = (line) => parseSyslog(line);

function functionParser(fn: ParseFunction): Parser {
  return (input: string): ParsedLine => {
    const line = stripCR(input);
    if (isBlank(line)) return { line, fields: undefined, blank: true };
    let result: unknown;
    let dropped = 0;
    try {
      result = fn(line);
      if (result === null || result === undefined) return { line, fields: undefined };
      if (typeof result !== "object" || Array.isArray(result) || !fieldsLike(result)) return { line, fields: undefined, error: "invalid_result" };
      // Inside the try: a throwing getter on the user's object is the parser's failure, not the collector's.
      dropped = stripProtoKeys(result, FUNCTION_WALK_DEPTH, FUNCTION_WALK_NODES);
    } catch {
      return { line, fields: undefined, error: "parser_threw" };
    }
    const fields = result as Record<string, unknown>;
    return dropped > 0 ? { line, fields, droppedKeys: dropped } : { line, fields };
  };
}

/**
 * Not a promise (an async parse function), nor a Map, Set, Date, RegExp or binary data: those are objects whose
 * fields are not their entries, and would become an empty or mangled record.
 */
function fieldsLike(result: object): boolean {
  if (typeof (result as { then?: unknown }).then === "function") return false;
  return !(result instanceof Map || result instanceof Set || result instanceof Date || result instanceof RegExp || result instanceof ArrayBuffer || ArrayBuffer.isView(result));
}
