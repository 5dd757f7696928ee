// Parser "plain": the line is the message; a level is sniffed from the first few tokens, modestly.
import { normalizeLevel, type LogLevel } from "../../record.js";
import { isBlank, stripCR } from "./text.js";
import type { ParsedLine } from "./types.js";

// Words accepted as a level in free text. Single letters, "log", "fine", "config" … are left out on purpose:
// "I started", "Log rotated", "Config loaded" are sentences, not levels.
const PLAIN_LEVEL_WORDS = new Set([
  "trace", "trc", "verbose", "debug", "dbg", "info", "inf", "information", "notice", "warn", "warning", "wrn",
  "error", "err", "eror", "severe", "fatal", "ftl", "crit", "critical", "alert", "emerg", "emergency", "panic",
]);

/** How many leading tokens the sniffer looks at (date, time, thread or logger, level). */
const MAX_TOKENS = 4;

/**
 * The line as a plain message (trailing `\r` removed). The level is sniffed from the first four whitespace-separated
 * tokens, stopping at the first ordinary word. A token counts when it is
 * - `level=<word>` or `lvl=<word>` (any level word `normalizeLevel` knows);
 * - a level word in brackets or followed by a colon, in any case: `[WARN]`, `<error>`, `(info)`, `Error:`,
 *   `ERROR:root:message` (Python's default format);
 * - a bare level word in capitals: `ERROR`, `WARN`.
 * Tokens that start with a digit (dates, times, pids) or sit in brackets (`[main]`) are skipped over, so
 * `2024-01-15 10:00:00,123 [main] ERROR …` finds `error`. Anything else stops the search: `Error handling was
 * improved` has no level (capitalized, no colon), which is the point.
 */
export function parsePlain(input: string): ParsedLine {
  const line = stripCR(input);
  if (isBlank(line)) return { line, fields: undefined, blank: true };
  const level = sniffLevel(line);
  return level === undefined ? { line, fields: undefined } : { line, fields: undefined, level };
}

/** The level a plain line announces in its first tokens, if any. See {@link parsePlain}. */
export function sniffLevel(line: string): LogLevel | undefined {
  const n = Math.min(line.length, 200);
  let i = 0;
  for (let t = 0; t < MAX_TOKENS; t++) {
    while (i < n && line.charCodeAt(i) <= 32) i++;
    if (i >= n) return undefined;
    const start = i;
    while (i < n && line.charCodeAt(i) > 32) i++;
    const first = line.charCodeAt(start);
    if (first >= 48 && first <= 57) continue; // date, time, pid
    const token = line.slice(start, i);
    const eq = token.indexOf("=");
    if (eq !== -1) {
      const key = token.slice(0, eq).toLowerCase();
      if (key !== "level" && key !== "lvl") return undefined;
      return normalizeLevel(token.slice(eq + 1).replace(/^["']|["']$/g, ""));
    }
    const open = first === 91 /* [ */ || first === 40 /* ( */ || first === 60; /* < */
    let word = token;
    let decorated = false;
    if (open) {
      word = word.slice(1);
      decorated = true;
    }
    const colon = word.indexOf(":");
    if (colon > 0) {
      word = word.slice(0, colon);
      decorated = true;
    }
    const last = word.charCodeAt(word.length - 1);
    if (last === 93 /* ] */ || last === 41 /* ) */ || last === 62 /* > */ || last === 44 /* , */ || last === 124 /* | */) {
      word = word.slice(0, -1);
    }
    const lower = word.toLowerCase();
    if (PLAIN_LEVEL_WORDS.has(lower) && (decorated || word === word.toUpperCase())) return normalizeLevel(lower);
    if (!open) return undefined; // an ordinary word: the line has begun; stop looking
  }
  return undefined;
}
