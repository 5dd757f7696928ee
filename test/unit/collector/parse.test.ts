// Parsers, table-driven over the fixture corpus: each line's fields, or the parse error it is counted under.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LineSplitter } from "../../../src/collector/line-splitter.js";
import {
  createParser, parseJson, parseLogfmt, parsePlain, sniffLevel, MAX_JSON_DEPTH, type ParsedLine, type ParserSpec,
} from "../../../src/collector/parse/index.js";
import { InvalidOptionError } from "../../../src/errors.js";

function fixtureLines(name: string): string[] {
  const lines: string[] = [];
  const s = new LineSplitter({}, (t) => lines.push(t));
  s.push(readFileSync(new URL(`../../fixtures/parse/${name}`, import.meta.url)));
  s.flush();
  return lines;
}

// Plain-object view for comparison (parsers may return null-prototype objects).
const plain = (p: ParsedLine) => ({ ...p, fields: p.fields === undefined ? undefined : JSON.parse(JSON.stringify(p.fields)) });

describe("json parser over app.ndjson", () => {
  const lines = fixtureLines("app.ndjson");
  const results = lines.map(parseJson);

  it.each([
    [0, { level: 30, msg: "request completed", req: { method: "GET", headers: { accept: "application/json" } } }],
    [1, { "log.level": "warn", service: { name: "billing", version: "1.2.3" }, disk: { free_bytes: 1024 } }],
    [2, { log: "container says hello\n", stream: "stderr" }],
    [3, { levelname: "ERROR", error: { type: "CardDeclined", code: 51 } }],
    [5, { severity: "Informational", log: { logger: "auth", level: "5" } }],
    [16, { msg: "unicode ✓ 日本語 😀", level: "INFO" }],
  ])("line %i keeps nested fields", (i, subset) => {
    expect(results[i]!.error).toBeUndefined();
    expect(results[i]!.fields).toMatchObject(subset);
  });

  it.each([
    [11, "not_an_object"], // [1,2,3]
    [12, "not_an_object"], // "just a string"
    [13, "invalid_json"], // {"unterminated":
    [14, "invalid_json"], // not json at all
  ] as const)("line %i is a parse error (%s), line kept", (i, reason) => {
    expect(results[i]).toEqual({ line: lines[i], fields: undefined, error: reason });
  });

  it("reports a whitespace-only line as blank, not as an error", () => {
    expect(results[15]).toEqual({ line: lines[15], fields: undefined, blank: true });
    expect(parseJson("")).toEqual({ line: "", fields: undefined, blank: true });
  });

  it("drops __proto__ keys at every depth, also when spelled with \\u escapes, without polluting anything", () => {
    const p = results[7]!;
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.getPrototypeOf(p.fields)).toBe(Object.prototype);
    expect(Object.hasOwn(p.fields!, "__proto__")).toBe(false);
    const a = p.fields!["a"] as Record<string, unknown>;
    expect(Object.hasOwn(a, "__proto__")).toBe(false);
    expect(Object.getPrototypeOf(a)).toBe(Object.prototype);
    expect(a["b"]).toBe(1);
    // "constructor" is an ordinary word and stays: it is only dangerous in a careless merge, which we never do
    expect(p.fields!["constructor"]).toEqual({ prototype: { polluted: "ctor" } });
    expect(p.droppedKeys).toBe(2);
    const escaped = results[8]!;
    expect(Object.hasOwn(escaped.fields!, "__proto__")).toBe(false);
    expect(escaped.droppedKeys).toBe(1);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it("parses huge numbers as doubles (documented precision loss), never crashing", () => {
    const f = results[9]!.fields!;
    expect(f["id"]).toBe(12345678901234567000);
    expect(f["big"]).toBe(Number.POSITIVE_INFINITY);
    expect(f["small"]).toBe(-0);
  });

  it("turns 10k-deep nesting into a too_deep parse error instead of a record that cannot be serialized", () => {
    const deep = "[".repeat(10_000) + "]".repeat(10_000);
    expect(parseJson(deep)).toEqual({ line: deep, fields: undefined, error: "too_deep" });
    const deepObject = '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000);
    expect(parseJson(deepObject).error).toBe("too_deep");
    // brackets inside strings do not count, and the limit itself is allowed
    const atLimit = '{"x":' + "[".repeat(MAX_JSON_DEPTH - 1) + "]".repeat(MAX_JSON_DEPTH - 1) + ',"s":"' + "[".repeat(3000) + '"}';
    const ok = parseJson(atLimit);
    expect(ok.error).toBeUndefined();
    expect(() => JSON.stringify(ok.fields)).not.toThrow();
  });

  it("strips a trailing CR and parses CRLF lines", () => {
    expect(parseJson('{"a":1}\r')).toEqual({ line: '{"a":1}', fields: { a: 1 } });
  });
});

describe("logfmt parser over app.logfmt", () => {
  const lines = fixtureLines("app.logfmt");

  it.each([
    [0, { ts: "2024-01-15T10:00:00Z", level: "info", msg: "user logged in", user: "alice", duration: "12ms" }],
    [1, { time: "2024-01-15T10:00:01+01:00", level: "warning", msg: 'quote "inside" and backslash \\ and = sign', path: "/a=b" }],
    [2, { level: "error", msg: "multi\nline", retry: true, ok: true, err: "" }],
    [3, { lvl: "debug", msg: "ünïcødé", "key.with.dots": "value", 名前: "値" }],
    [4, { level: "info", msg: "unterminated quote runs to the end" }],
    [5, { msg: "guarded" }],
  ])("line %i", (i, expected) => {
    const p = parseLogfmt(lines[i]!);
    expect(p.error).toBeUndefined();
    expect({ ...p.fields }).toEqual(expected);
  });

  it("drops a __proto__ key, counted, and uses a null-prototype object", () => {
    const p = parseLogfmt(lines[5]!);
    expect(p.droppedKeys).toBe(1);
    expect(Object.getPrototypeOf(p.fields)).toBeNull();
    expect(({} as Record<string, unknown>)["x"]).toBeUndefined();
  });

  it("counts a line without any key=value pair as not_logfmt", () => {
    expect(parseLogfmt(lines[6]!)).toEqual({ line: lines[6], fields: undefined, error: "not_logfmt" });
    expect(parseLogfmt(lines[7]!).blank).toBe(true);
  });

  it.each([
    ['a="x\\ty\\u00e9\\q"', { a: "x\tyé\\q" }],
    ["a=1 a=2", { a: "2" }],
    ["=oops a=1", { a: "1" }],
    ['a="" b', { a: "", b: true }],
    ['a="\\\\" b=2', { a: "\\", b: "2" }],
    ["  k=v  ", { k: "v" }],
    ["k=v\r", { k: "v" }],
  ])("%s", (line, expected) => {
    expect({ ...parseLogfmt(line).fields }).toEqual(expected);
  });
});

describe("regex parser over nginx-access.log", () => {
  const spec: ParserSpec = {
    regex: String.raw`^(?<client_ip>\S+) \S+ (?<user>\S+) \[(?<time_local>[^\]]+)\] "(?<method>\S+) (?<path>\S+) (?<protocol>[^"]+)" (?<status>\d{3}) (?<bytes>\d+) "(?<referrer>[^"]*)" "(?<user_agent>[^"]*)"(?<extra> .*)?$`,
  };
  const parse = createParser(spec);
  const lines = fixtureLines("nginx-access.log");

  it.each([
    [0, { client_ip: "192.168.1.10", user: "alice", time_local: "15/Jan/2024:10:00:00 +0100", method: "GET", status: "200", user_agent: "curl/8.5.0" }],
    [1, { client_ip: "10.0.0.7", user: "-", method: "POST", path: "/api/login", protocol: "HTTP/2.0", referrer: "https://example.com/" }],
  ])("line %i: named groups become string fields", (i, subset) => {
    const p = parse(lines[i]!);
    expect(p.error).toBeUndefined();
    expect({ ...p.fields }).toMatchObject(subset);
    expect(Object.hasOwn(p.fields!, "extra")).toBe(false); // a group that did not take part is left out
  });

  it("counts a line that does not match as no_match and keeps it", () => {
    expect(parse(lines[2]!)).toEqual({ line: lines[2], fields: undefined, error: "no_match" });
  });

  it("removes g and y so that every line is matched from its start", () => {
    const p = createParser({ regex: /(?<word>\w+)/gy });
    expect(p("one").fields).toEqual(Object.assign(Object.create(null), { word: "one" }));
    expect(p("two").fields?.["word"]).toBe("two");
    expect(p("three").fields?.["word"]).toBe("three");
  });

  it("uses flags to override, e.g. s for multiline events", () => {
    const p = createParser({ regex: "^(?<first>[^\\n]*)\\n(?<rest>.*)$", flags: "s" });
    expect({ ...p("a\nb\nc").fields }).toEqual({ first: "a", rest: "b\nc" });
  });
});

describe("plain parser", () => {
  it.each([
    ["ERROR something broke", "error"],
    ["[WARN] disk", "warn"],
    ["[warn] disk", "warn"],
    ["<info> x", "info"],
    ["WARNING: low memory", "warn"],
    ["Error: ENOENT", "error"],
    ["error: could not open", "error"],
    ["ERROR:root:message from python", "error"],
    ["level=info msg=x", "info"],
    ['lvl="debug" x', "debug"],
    ["2024-01-15T10:00:00Z INFO started", "info"],
    ["2024-01-15 10:00:00,123 [main] ERROR c.e.App - boom", "error"],
    ["[2024-01-15 10:00:00] FATAL out of memory", "fatal"],
    ["12345 DEBUG pid first", "debug"],
    ["Error handling was improved", undefined],
    ["Debug mode enabled", undefined],
    ["I started the server", undefined],
    ["Config loaded", undefined],
    ["hello ERROR later", undefined],
    ["level=banana x", undefined],
    ["a b c d ERROR", undefined],
    ["", undefined],
  ] as const)("%s → %s", (line, level) => {
    expect(sniffLevel(line)).toBe(level);
  });

  it("keeps the line as message material, strips CR, reports blanks", () => {
    expect(parsePlain("hello\r")).toEqual({ line: "hello", fields: undefined });
    expect(parsePlain("ERROR x")).toEqual({ line: "ERROR x", fields: undefined, level: "error" });
    expect(parsePlain(" \t ")).toEqual({ line: " \t ", fields: undefined, blank: true });
    expect(parsePlain("a\0b")).toEqual({ line: "a\0b", fields: undefined });
  });
});

describe("createParser", () => {
  it("returns the built-in parsers", () => {
    expect(createParser("json")('{"a":1}').fields).toEqual({ a: 1 });
    expect(createParser("logfmt")("a=1").fields?.["a"]).toBe("1");
    expect(createParser("plain")("x").line).toBe("x");
  });

  describe("function parser", () => {
    it.each([
      ["an object", () => ({ a: 1 }), { fields: { a: 1 } }],
      ["a null-prototype object", () => Object.assign(Object.create(null), { a: 1 }), { fields: { a: 1 } }],
      ["null → plain, not an error", () => null, { fields: undefined }],
      ["undefined → plain, not an error", () => undefined, { fields: undefined }],
      ["a string → invalid_result", () => "x", { fields: undefined, error: "invalid_result" }],
      ["an array → invalid_result", () => [1], { fields: undefined, error: "invalid_result" }],
      ["a promise (an async function) → invalid_result", async () => ({ a: 1 }), { fields: undefined, error: "invalid_result" }],
      ["a Map → invalid_result", () => new Map([["a", 1]]), { fields: undefined, error: "invalid_result" }],
      ["a Date → invalid_result", () => new Date(0), { fields: undefined, error: "invalid_result" }],
      ["a Buffer → invalid_result", () => Buffer.from("a"), { fields: undefined, error: "invalid_result" }],
      ["a throw → parser_threw", () => { throw new Error("boom"); }, { fields: undefined, error: "parser_threw" }],
    ])("%s", (_name, fn, expected) => {
      const p = createParser(fn as never)("line");
      expect(plain(p)).toEqual({ line: "line", ...expected });
    });

    it("sanitizes __proto__ keys in the result and survives cycles and throwing getters", () => {
      const p = createParser((line) => JSON.parse(line) as Record<string, unknown>);
      const r = p('{"__proto__":{"polluted":1},"x":{"__proto__":{"polluted":2}}}');
      expect(r.droppedKeys).toBe(2);
      expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
      const cyclic: Record<string, unknown> = { a: 1 };
      cyclic["self"] = cyclic;
      expect(createParser(() => cyclic)("x").fields).toBe(cyclic);
      const trap = { get boom(): never { throw new Error("getter"); } };
      expect(createParser(() => ({ nested: trap }))("x").error).toBe("parser_threw");
    });

    it("gives the function the line without its CR and never calls it for blank lines", () => {
      const seen: string[] = [];
      const p = createParser((l) => { seen.push(l); return {}; });
      p("a\r");
      expect(p("   ").blank).toBe(true);
      expect(seen).toEqual(["a"]);
    });
  });

  it.each([
    ["xml", 'Expected `parser` to be "json", "logfmt", "plain", "syslog", { syslog }, { regex } or a function, got `"xml"` (string)'],
    [42, 'Expected `parser` to be "json", "logfmt", "plain", "syslog", { syslog }, { regex } or a function, got `42` (number)'],
    [null, 'Expected `parser` to be "json", "logfmt", "plain", "syslog", { syslog }, { regex } or a function, got `null`'],
    [{}, 'Expected `parser` to be "json", "logfmt", "plain", "syslog", { syslog }, { regex } or a function, got an object'],
    [{ regex: "(unclosed" }, 'Expected `parser.regex` to be a valid regular expression, got `"(unclosed"` (string)'],
    [{ regex: "^(\\w+) (.*)$" }, "Expected `parser.regex` to have at least one named group such as (?<message>.*), got"],
    [{ regex: 5 }, "Expected `parser.regex` to be a string or a RegExp, got `5` (number)"],
    [{ regex: "(?<a>x)", flags: "q" }, 'Expected `parser.flags` to be regular-expression flags such as "i" or "s", got `"q"` (string)'],
    [{ regex: "(?<__proto__>x)" }, "Expected `parser.regex` group names other than __proto__"],
  ])("rejects %o", (spec, message) => {
    expect(() => createParser(spec as ParserSpec)).toThrow(InvalidOptionError);
    expect(() => createParser(spec as ParserSpec)).toThrow(message);
  });

  it("names the option it was given in messages", () => {
    expect(() => createParser("yaml" as ParserSpec, "sources[2].parser")).toThrow("Expected `sources[2].parser` to be");
  });
});
