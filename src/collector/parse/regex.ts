// Parser { regex }: named capture groups become fields (the grok-like case: nginx, Apache, custom app formats).
import { InvalidOptionError } from "../../errors.js";
import { describe } from "../../pipeline/serialize.js";
import { checkKeys, optionKeys } from "../../util/validate.js";
import { isBlank, stripCR } from "./text.js";
import type { ParsedLine, Parser, RegexParserSpec } from "./types.js";

/**
 * Compile a regex parser once. Throws `InvalidOptionError` when the pattern does not compile, the flags are
 * invalid, or the pattern has no named group. `g` and `y` are removed from the flags: they make `exec` stateful
 * (`lastIndex`) and every other line would fail to match.
 *
 * The compiled parser: a match yields the named groups that took part (`undefined` groups are left out) as string
 * fields; no match yields `error: "no_match"` and the line as the message. The pattern runs on the whole event, so
 * for multiline events use the `s` flag or `[\s\S]*` in the group that should take the continuation lines.
 */
const REGEX_KEYS = optionKeys<RegexParserSpec>()(["regex", "flags"]);

export function createRegexParser(spec: RegexParserSpec, optionName = "parser"): Parser {
  // `flag: "i"` for `flags` would give a case-sensitive parser without a word.
  checkKeys(optionName, spec, REGEX_KEYS);
  const { regex, flags } = spec;
  if (typeof regex !== "string" && !(regex instanceof RegExp)) {
    throw new InvalidOptionError(`Expected \`${optionName}.regex\` to be a string or a RegExp, got ${describe(regex)}`);
  }
  if (flags !== undefined && (typeof flags !== "string" || !/^[dgimsuvy]*$/.test(flags))) {
    throw new InvalidOptionError(`Expected \`${optionName}.flags\` to be regular-expression flags such as "i" or "s", got ${describe(flags)}`);
  }
  const source = typeof regex === "string" ? regex : regex.source;
  const chosen = (flags ?? (typeof regex === "string" ? "" : regex.flags)).replace(/[gy]/g, "");
  let re: RegExp;
  let probe: RegExpExecArray | null;
  try {
    re = new RegExp(source, chosen);
    // `(?:src)|` always matches "", and its `groups` lists every named group (set to undefined).
    probe = new RegExp(`(?:${source})|`, chosen).exec("");
  } catch (error) {
    throw new InvalidOptionError(
      `Expected \`${optionName}.regex\` to be a valid regular expression, got ${describe(source)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const names = probe?.groups === undefined ? [] : Object.keys(probe.groups);
  if (names.length === 0) {
    throw new InvalidOptionError(
      `Expected \`${optionName}.regex\` to have at least one named group such as (?<message>.*), got ${describe(source)}`,
    );
  }
  if (names.includes("__proto__")) {
    throw new InvalidOptionError(`Expected \`${optionName}.regex\` group names other than __proto__, got ${describe(source)}`);
  }
  return (input: string): ParsedLine => {
    const line = stripCR(input);
    if (isBlank(line)) return { line, fields: undefined, blank: true };
    const match = re.exec(line);
    if (match === null) return { line, fields: undefined, error: "no_match" };
    const groups = match.groups!;
    const fields = Object.create(null) as Record<string, unknown>;
    for (let i = 0; i < names.length; i++) {
      const value = groups[names[i]!];
      if (value !== undefined) fields[names[i]!] = value;
    }
    return { line, fields };
  };
}
