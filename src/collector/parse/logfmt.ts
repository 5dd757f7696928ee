// Parser "logfmt": key=value pairs as written by Go's logfmt, logrus' text formatter, Heroku and Grafana tools.
import { isBlank, stripCR } from "./text.js";
import type { ParsedLine } from "./types.js";

/**
 * Parse one logfmt line: `ts=2024-01-15T10:00:00Z level=info msg="user logged in" user=alice ok`.
 *
 * - Values are **strings**, never converted to numbers (`status=200` gives `"200"`): logfmt has no types, and a
 *   field that is sometimes `200` and sometimes `OK` would break an Elasticsearch mapping. Level and timestamp
 *   extraction read strings anyway.
 * - A bare key (`ok`) is `true`; `key=` is `""`.
 * - Quoted values may hold spaces and `=`, and these escapes: `\"`, `\\`, `\n`, `\r`, `\t`, `\uXXXX`; any other
 *   backslash is kept as written. An unterminated quote takes the rest of the line (nothing is lost).
 * - A repeated key keeps its last value. `__proto__` keys are dropped (counted in `droppedKeys`).
 * - A line with no `key=value` pair at all is a parse error (`not_logfmt`): it is plain text, kept as the message.
 *
 * Fields live in a null-prototype object, so no key can reach `Object.prototype`.
 */
export function parseLogfmt(input: string): ParsedLine {
  const line = stripCR(input);
  if (isBlank(line)) return { line, fields: undefined, blank: true };
  const fields = Object.create(null) as Record<string, unknown>;
  const n = line.length;
  let pairs = 0;
  let dropped = 0;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    if (c <= 32) {
      i++;
      continue;
    }
    const keyStart = i;
    while (i < n && (c = line.charCodeAt(i)) > 32 && c !== 61 && c !== 34) i++;
    if (i === keyStart) {
      // A token that starts with '=' or '"' has no key: skip it to the next space.
      while (i < n && line.charCodeAt(i) > 32) i++;
      continue;
    }
    const key = line.slice(keyStart, i);
    let value: string | true;
    if (i < n && c === 61) {
      i++;
      if (i < n && line.charCodeAt(i) === 34) {
        const close = findClosingQuote(line, i + 1);
        const end = close === -1 ? n : close;
        const raw = line.slice(i + 1, end);
        value = raw.includes("\\") ? unescape(raw) : raw;
        i = close === -1 ? n : close + 1;
      } else {
        const valueStart = i;
        while (i < n && line.charCodeAt(i) > 32) i++;
        value = line.slice(valueStart, i);
      }
      pairs++;
    } else {
      if (i < n && c === 34) {
        // `key"…`: malformed; treat the whole token as a bare key.
        while (i < n && line.charCodeAt(i) > 32) i++;
        continue;
      }
      value = true;
    }
    if (key === "__proto__") dropped++;
    else fields[key] = value;
  }
  if (pairs === 0) return { line, fields: undefined, error: "not_logfmt" };
  return dropped > 0 ? { line, fields, droppedKeys: dropped } : { line, fields };
}

function findClosingQuote(line: string, from: number): number {
  for (let i = from; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 92) i++;
    else if (c === 34) return i;
  }
  return -1;
}

function unescape(raw: string): string {
  let out = "";
  let last = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw.charCodeAt(i) !== 92 || i + 1 >= raw.length) continue;
    const next = raw[i + 1];
    let replacement: string | undefined;
    let width = 2;
    switch (next) {
      case '"': replacement = '"'; break;
      case "\\": replacement = "\\"; break;
      case "n": replacement = "\n"; break;
      case "r": replacement = "\r"; break;
      case "t": replacement = "\t"; break;
      case "u": {
        const hex = raw.slice(i + 2, i + 6);
        if (/^[0-9a-fA-F]{4}$/.test(hex)) {
          replacement = String.fromCharCode(parseInt(hex, 16));
          width = 6;
        }
        break;
      }
    }
    if (replacement === undefined) {
      i++; // keep an unknown escape as written, and do not let its second character start another escape
      continue;
    }
    out += raw.slice(last, i) + replacement;
    i += width - 1;
    last = i + 1;
  }
  return out + raw.slice(last);
}
