// Table-driven checks of the record → GELF mapping rules (protocols.md §1.2, §1.7, §4).
import { describe, expect, it } from "vitest";
import type { LogLevel, LogRecord } from "../../../src/record.js";
import {
  DEFAULT_GELF_LEVELS,
  EMPTY_SHORT_MESSAGE,
  fitGelf,
  gelfFieldName,
  toGelf,
  type GelfMappingOptions,
} from "../../../src/sinks/gelf-message.js";

const opts: GelfMappingOptions = { host: "fallback-host", levels: DEFAULT_GELF_LEVELS, flattenDepth: 4 };
const base = (extra: Partial<LogRecord> & Record<string, unknown> = {}): LogRecord => ({
  "@timestamp": "2024-05-01T12:00:00.123Z",
  message: "hello",
  ...extra,
});

describe("toGelf standard fields", () => {
  it.each([
    ["2024-05-01T12:00:00.123Z", 1714564800.123],
    ["2024-05-01T12:00:00.000Z", 1714564800],
    ["1970-01-01T00:00:01.001Z", 1.001],
  ])("timestamp %s → %d seconds (not milliseconds)", (ts, seconds) => {
    const g = toGelf(base({ "@timestamp": ts }), opts);
    expect(g.timestamp).toBe(seconds);
    expect(JSON.stringify(g)).toContain(`"timestamp":${seconds}`);
  });

  it.each([
    ["trace", 7],
    ["debug", 7],
    ["info", 6],
    ["warn", 4],
    ["error", 3],
    ["fatal", 2],
    [undefined, 6],
  ] as const)("level %s → %d", (level, n) => {
    const g = toGelf(base(level === undefined ? {} : { log: { level } }), opts);
    expect(g.level).toBe(n);
  });

  it("takes a syslog severity (log.syslog.severity.code, 0 to 7) as the level as it came, over log.level", () => {
    const severity = (code: unknown, level: LogLevel = "info") => toGelf(base({ log: { level, syslog: { severity: { code } } } }), opts).level;
    expect(severity(5)).toBe(5); // notice: log.level says info (6)
    expect(severity(1, "fatal")).toBe(1); // alert
    expect(severity(0, "fatal")).toBe(0); // emergency
    for (const bad of [8, -1, 2.5, "3", null]) expect(severity(bad, "warn")).toBe(4);
  });

  it("honours a custom level mapping, including 0 (always serialized)", () => {
    const g = toGelf(base({ log: { level: "fatal" } }), { ...opts, levels: { ...DEFAULT_GELF_LEVELS, fatal: 0 } });
    expect(g.level).toBe(0);
    expect(JSON.stringify(g)).toContain('"level":0');
  });

  it.each([
    ["single line", "hello", "hello", undefined],
    ["multi-line", "first line\nsecond\nthird", "first line", "first line\nsecond\nthird"],
    ["CRLF", "a\r\nb", "a", "a\r\nb"],
    ["leading blank lines", "\n  \nreal start\nmore", "real start", "\n  \nreal start\nmore"],
    ["trailing spaces trimmed in short", "text   \nx", "text", "text   \nx"],
    ["empty", "", EMPTY_SHORT_MESSAGE, undefined],
    ["only whitespace", "  \n ", EMPTY_SHORT_MESSAGE, "  \n "],
  ])("%s: short_message/full_message", (_name, message, short, full) => {
    const g = toGelf(base({ message }), opts);
    expect(g.short_message).toBe(short);
    expect(g.full_message).toBe(full);
  });

  it("uses error.stack_trace as full_message (after the message) and does not repeat it as an extra", () => {
    const g = toGelf(base({ message: "boom", error: { stack_trace: "Error: boom\n    at x", type: "Error" } }), opts);
    expect(g.short_message).toBe("boom");
    expect(g.full_message).toBe("boom\nError: boom\n    at x");
    expect(g).not.toHaveProperty("_error_stack_trace");
    expect(g._error_type).toBe("Error");
  });

  it("host: host.name, else the option; host.name is not repeated but other host.* are kept", () => {
    expect(toGelf(base({ host: { name: "web-1", ip: "10.0.0.1" } }), opts)).toMatchObject({ host: "web-1", _host_ip: "10.0.0.1" });
    expect(toGelf(base({ host: { name: "web-1" } }), opts)).not.toHaveProperty("_host_name");
    expect(toGelf(base(), opts).host).toBe("fallback-host");
    expect(toGelf(base({ host: { name: "  " } }), opts).host).toBe("fallback-host");
  });

  it("puts the standard fields first, in spec order", () => {
    const g = toGelf(base({ message: "a\nb", zeta: 1 }), opts);
    expect(Object.keys(g)).toEqual(["version", "host", "short_message", "full_message", "timestamp", "level", "_zeta"]);
    expect(g.version).toBe("1.1");
  });
});

describe("toGelf additional fields", () => {
  it.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ["nested ECS path", { log: { file: { path: "/var/log/a.log" }, offset: 42 } }, { _log_file_path: "/var/log/a.log", _log_offset: 42 }],
    ["booleans become strings", { ok: true, bad: false }, { _ok: "true", _bad: "false" }],
    ["numbers stay numbers", { n: 1.5, z: 0, neg: -3 }, { _n: 1.5, _z: 0, _neg: -3 }],
    ["arrays become JSON text", { tags: ["a", "b"], mixed: [1, { x: 1 }] }, { _tags: '["a","b"]', _mixed: '[1,{"x":1}]' }],
    ["objects deeper than flattenDepth become JSON text", { a: { b: { c: { d: { e: 1 } } } } }, { _a_b_c_d: '{"e":1}' }],
    ["dots and odd characters become _", { "user.name": "x", "k€y sp@ce": "y", "a-b": "z" }, { _user_name: "x", "_k_y_sp_ce": "y", "_a-b": "z" }],
    ["id is never sent as _id", { id: "abc" }, { _id_: "abc" }],
    ["reserved names get a trailing _", { source: "s", type: "t", index: "i", all: "a", score: 1, ttl: 2 }, { _source_: "s", _type_: "t", _index_: "i", _all_: "a", _score_: 1, _ttl_: 2 }],
    ["gl2_ names are moved out of Graylog's namespace", { gl2_source_input: "x" }, { _gl2x_source_input: "x" }],
    [
      "names Graylog would store as one of the message's own fields get a trailing _ too",
      { _id: "e1", timestamp: "t", level: "l", host: "h", facility: "f", version: "v", full_message: "fm", short_message: "sm" },
      { "__id_": "e1", _timestamp_: "t", _level_: "l", _host_: "h", _facility_: "f", _version_: "v", _full_message_: "fm", _short_message_: "sm" },
    ],
    ["log.level kept as text", { log: { level: "warn" } }, { _log_level: "warn" }],
  ])("%s", (_name, fields, expected) => {
    const g = toGelf(base(fields), opts);
    expect(g).toMatchObject(expected);
    expect(g).not.toHaveProperty("_id");
  });

  it("drops nulls (Graylog would drop them anyway)", () => {
    const g = toGelf(base({ gone: null, nested: { gone: null, kept: "k" } }), opts);
    expect(g).not.toHaveProperty("_gone");
    expect(g).not.toHaveProperty("_nested_gone");
    expect(g._nested_kept).toBe("k");
  });

  it("every additional field name matches the GELF regex and Graylog's key check", () => {
    const g = toGelf(base({ "wéird key!": 1, "": 2, a: { "b c": { "d/e": 3 } }, "@meta": 4 }), opts);
    for (const key of Object.keys(g)) {
      if (["version", "host", "short_message", "full_message", "timestamp", "level"].includes(key)) continue;
      expect(key).toMatch(/^_[\w.\-]+$/);
      expect(key).not.toBe("_id");
    }
    expect(g._empty_key).toBe(2);
    expect(g["_a_b_c_d_e"]).toBe(3);
  });

  it("first field wins when two names sanitize to the same one", () => {
    const g = toGelf(base({ "a.b": "first", a_b: "second" }), opts);
    expect(g._a_b).toBe("first");
  });

  it.each([
    ["a", "_a"],
    ["log.file.path", "_log_file_path"],
    ["id", "_id_"],
    ["gl2_x", "_gl2x_x"],
    ["x y", "_x_y"],
    ["_id", "__id_"],
    ["timestamp", "_timestamp_"],
  ])("gelfFieldName(%s) = %s", (input, out) => {
    expect(gelfFieldName(input)).toBe(out);
  });
});

describe("fitGelf (truncation rule)", () => {
  const size = (j: string): number => Buffer.byteLength(j);

  it("returns the JSON untouched when it fits", () => {
    const g = toGelf(base(), opts);
    expect(fitGelf(g, 10_000, size)).toEqual({ json: JSON.stringify(g), truncated: false });
  });

  it("shortens full_message first and marks the message", () => {
    const g = toGelf(base({ message: "head\n" + "x".repeat(50_000) }), opts);
    const f = fitGelf(g, 2_000, size)!;
    expect(f.truncated).toBe(true);
    expect(size(f.json)).toBeLessThanOrEqual(2_000);
    const parsed = JSON.parse(f.json) as Record<string, string>;
    expect(parsed.short_message).toBe("head");
    expect(parsed._gelf_truncated).toBe("true");
    expect(parsed.full_message === undefined || parsed.full_message.startsWith("head\nxxx")).toBe(true);
  });

  it("then shortens short_message", () => {
    const g = toGelf(base({ message: "y".repeat(50_000) }), opts);
    const f = fitGelf(g, 1_000, size)!;
    const parsed = JSON.parse(f.json) as Record<string, string>;
    expect(size(f.json)).toBeLessThanOrEqual(1_000);
    expect(parsed.short_message).toMatch(/^y+…$/);
  });

  it("returns undefined when the extras alone are too large", () => {
    const g = toGelf(base({ big: "z".repeat(5_000) }), opts);
    expect(fitGelf(g, 1_000, size)).toBeUndefined();
  });

  it("never splits a surrogate pair", () => {
    const g = toGelf(base({ message: "😀".repeat(10_000) }), opts);
    const f = fitGelf(g, 3_000, size)!;
    const parsed = JSON.parse(f.json) as Record<string, string>;
    expect(parsed.short_message).toMatch(/^(😀)+…$/u);
  });
});
