// Option validators shared by the aggregator, the sources and the sinks, so that every "Expected …, got …"
// message is worded the same way and a rule (what a valid name is) lives in one place.
import { InvalidOptionError } from "../errors.js";
import { describe } from "../pipeline/serialize.js";

/** Source and sink names: used in events, metrics labels and `deadLetter` references. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** The longest delay Node's timers honour; a longer one fires after 1 ms (with only a warning). About 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Throws InvalidOptionError unless `value` is undefined or an integer ≥ min (Infinity allowed when `infinite`).
 * Options named `…Ms` are timer delays and must also be at most MAX_TIMER_MS.
 */
export function checkInt(path: string, value: unknown, min: number, infinite = false): void {
  if (value === undefined) return;
  const ok =
    typeof value === "number" &&
    ((Number.isInteger(value) && value >= min) || (infinite && value === Number.POSITIVE_INFINITY));
  if (!ok) {
    const what = min === 0 ? "a non-negative integer" : min === 1 ? "a positive integer" : `an integer ≥ ${min}`;
    throw new InvalidOptionError(`Expected \`${path}\` to be ${what}${infinite ? " or Infinity" : ""}, got ${describe(value)}`);
  }
  checkDelay(path, value);
}

export function checkNumber(path: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new InvalidOptionError(`Expected \`${path}\` to be a number ≥ ${min}, got ${describe(value)}`);
  }
  checkDelay(path, value);
}

function checkDelay(path: string, value: number): void {
  if (path.endsWith("Ms") && value > MAX_TIMER_MS && value !== Number.POSITIVE_INFINITY) {
    throw new InvalidOptionError(
      `Expected \`${path}\` to be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest delay Node's timers honour), got ${describe(value)}`,
    );
  }
}

export function checkObject(path: string, value: unknown): void {
  if (value === undefined) return;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidOptionError(`Expected \`${path}\` to be an object, got ${describe(value)}`);
  }
}

export function checkName(path: string, value: unknown): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidOptionError(`Expected \`${path}\` to be a non-empty string, got ${describe(value)}`);
  }
  if (!NAME.test(value)) {
    throw new InvalidOptionError(
      `Expected \`${path}\` to be a name of 1–128 letters, digits, \`_\`, \`.\`, \`:\` or \`-\` (starting with a letter or digit), got ${describe(value)}`,
    );
  }
}

/** Validate a required integer in [min, max]. */
export function requireInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`Expected \`${name}\` to be an integer between ${min} and ${max}, got ${describe(value)}`);
  }
  return value;
}

/** Validate an optional integer in [min, max]; returns `fallback` when `value` is undefined. */
export function intOption(name: string, value: unknown, fallback: number, min: number, max: number): number {
  return value === undefined ? fallback : requireInt(name, value, min, max);
}

/** Validate an optional boolean. */
export function boolOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new InvalidOptionError(`Expected \`${name}\` to be a boolean, got ${describe(value)}`);
  return value;
}

/** Validate an optional value taken from a fixed list. */
export function enumOption<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(
      `Expected \`${name}\` to be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${describe(value)}`,
    );
  }
  return value as T;
}

/** Validate a required source or sink name (the same rule the aggregator applies). */
export function nameOption(value: unknown): string {
  checkName("name", value);
  return value;
}

/**
 * The option names of `T`, checked by the compiler both ways: a name `T` lacks does not compile, and neither does a
 * list that leaves one of `T`'s names out. Usage: `const KEYS = optionKeys<Options>()(["a", "b"]);`
 */
export function optionKeys<T>() {
  return <const K extends ReadonlyArray<keyof T & string>>(
    keys: K & ([Exclude<keyof T & string, K[number]>] extends [never] ? unknown : { missing: Exclude<keyof T & string, K[number]> }),
  ): ReadonlySet<string> => new Set(keys);
}

/**
 * Throws InvalidOptionError for a key of `value` that is not an option (a misspelled `checkpointDir` would otherwise
 * turn persistence off without a word), naming the option it was probably meant to be.
 */
export function checkKeys(path: string, value: unknown, known: ReadonlySet<string>): void {
  if (value === null || typeof value !== "object") return;
  for (const [key, v] of Object.entries(value)) {
    // An unknown key left undefined sets nothing (a spread config's leftovers): only one with a value is a mistake.
    if (known.has(key) || v === undefined) continue;
    const guess = closest(key, known);
    throw new InvalidOptionError(
      `Unknown option \`${path === "" ? key : `${path}.${key}`}\`${guess === undefined ? "" : ` (did you mean \`${guess}\`?)`}; known: ${[...known].join(", ")}`,
    );
  }
}

/** The known name nearest to `key` (case-insensitive edit distance ≤ a third of its length), if any. */
function closest(key: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Math.max(a.length, b.length);
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}
