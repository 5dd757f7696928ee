// Parser "json": one JSON object per line (NDJSON, pino, bunyan, ECS loggers, Docker's json-file driver).
import { isBlank, stripCR } from "./text.js";
import { stripProtoKeys } from "./safe-keys.js";
import { MAX_JSON_DEPTH, type ParsedLine } from "./types.js";

/**
 * Parse one line as a JSON object. Never throws: invalid JSON, a non-object value or nesting deeper than
 * {@link MAX_JSON_DEPTH} yields `{ fields: undefined, error }` with the line kept for the message.
 *
 * Numbers are JavaScript doubles: integers beyond 2^53 (for example 64-bit ids) lose precision, as with any
 * `JSON.parse`. Log such ids as strings. `__proto__` keys are dropped at every depth (counted in `droppedKeys`).
 */
export function parseJson(input: string): ParsedLine {
  const line = stripCR(input);
  if (isBlank(line)) return { line, fields: undefined, blank: true };
  // JSON.parse itself copes with any depth, but JSON.stringify of the record would overflow the stack later.
  // Nesting depth N needs at least 2N characters, so short lines skip the scan.
  if (line.length > 2 * MAX_JSON_DEPTH && exceedsDepth(line, MAX_JSON_DEPTH)) {
    return { line, fields: undefined, error: "too_deep" };
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { line, fields: undefined, error: "invalid_json" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { line, fields: undefined, error: "not_an_object" };
  }
  // Only lines that could spell the key (directly or through a \u escape) pay for the walk.
  if (line.includes("__proto__") || line.includes("\\u")) {
    const dropped = stripProtoKeys(value, MAX_JSON_DEPTH + 1, Number.MAX_SAFE_INTEGER);
    if (dropped > 0) return { line, fields: value as Record<string, unknown>, droppedKeys: dropped };
  }
  return { line, fields: value as Record<string, unknown> };
}

/** Bracket depth of JSON text, ignoring brackets inside strings. Stops as soon as `max` is exceeded. */
export function exceedsDepth(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) {
      depth--;
    }
  }
  return false;
}
