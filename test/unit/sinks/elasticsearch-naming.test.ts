// Index patterns, index-name rules and deterministic ids of the Elasticsearch sink, without a network.
import { describe, expect, it } from "vitest";
import { InvalidOptionError } from "../../../src/errors.js";
import type { LogRecord } from "../../../src/record.js";
import { deterministicId } from "../../../src/sinks/elasticsearch/document-id.js";
import { compileIndexPattern, indexNameProblem, recordTimestamp } from "../../../src/sinks/elasticsearch/index-name.js";

const rec = (r: Partial<LogRecord>): LogRecord => ({ "@timestamp": "2024-05-01T12:00:00.000Z", message: "m", ...r }) as LogRecord;

describe("indexNameProblem", () => {
  it.each([
    ["logs-2024.05.01", undefined],
    ["Logs", "must be lowercase"],
    ["a b", "must not contain"],
    ["a*b", "must not contain"],
    ["a:b", "must not contain"],
    ["-x", "must not start"],
    ["_x", "must not start"],
    ["..", "must not be . or .."],
    ["", "must not be empty"],
    ["x".repeat(256), "at most 255 bytes"],
  ])("%j → %j", (name, problem) => {
    const got = indexNameProblem(name);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });
});

describe("compileIndexPattern", () => {
  it("keeps a static name as is", () => {
    const p = compileIndexPattern("logs", "index");
    expect(p.isStatic).toBe(true);
    expect(p.render("", undefined)).toBe("logs");
  });

  it("formats Joda date tokens from the timestamp in UTC", () => {
    const p = compileIndexPattern("logs-%{+yyyy.MM.dd}", "index");
    expect(p.needsTimestamp).toBe(true);
    expect(p.render("2024-05-01T23:59:59.999Z", undefined)).toBe("logs-2024.05.01");
    expect(p.render("2024-12-31T00:00:00.000Z", undefined)).toBe("logs-2024.12.31");
    expect(compileIndexPattern("x-%{+YYYY.MM.dd.HH}", "index").render("2024-05-01T07:00:00.000Z", undefined)).toBe("x-2024.05.01.07");
    expect(compileIndexPattern("x-%{+yy}", "index").render("2009-05-01T07:00:00.000Z", undefined)).toBe("x-09");
  });

  it("formats ISO week-year and week", () => {
    const p = compileIndexPattern("w-%{+xxxx.ww}", "index");
    // 2021-01-03 is a Sunday that belongs to ISO week 53 of 2020.
    expect(p.render("2021-01-03T10:00:00.000Z", undefined)).toBe("w-2020.53");
    expect(p.render("2024-05-01T10:00:00.000Z", undefined)).toBe("w-2024.18");
    // Years 0–99 are not 1900–1999 (Go's zero time is a common @timestamp); the calendar repeats every 400 years.
    expect(p.render("0001-01-01T00:00:00.000Z", undefined)).toBe("w-0001.01");
    for (const [old, recent] of [["0021-01-03", "2421-01-03"], ["0099-12-31", "2499-12-31"], ["0004-12-31", "2404-12-31"]]) {
      const a = p.render(`${old}T10:00:00.000Z`, undefined) as string;
      const b = p.render(`${recent}T10:00:00.000Z`, undefined) as string;
      expect(`${Number(a.slice(2, 6)) + 2400}${a.slice(6)}`, old).toBe(b.slice(2));
    }
  });

  it("inserts record fields, nested or dotted, and reports missing ones", () => {
    const p = compileIndexPattern("logs-%{[service][name]}-%{+yyyy}", "index");
    expect(p.needsRecord).toBe(true);
    expect(p.render("2024-05-01T00:00:00.000Z", rec({ service: { name: "api" } }))).toBe("logs-api-2024");
    const dotted = compileIndexPattern("logs-%{[service.name]}", "index");
    expect(dotted.render("", rec({ service: { name: "web" } }))).toBe("logs-web");
    expect(dotted.render("", rec({ "service.name": "flat" }))).toBe("logs-flat");
    expect(dotted.render("", rec({}))).toEqual({ problem: "index pattern field [service.name] is missing" });
    expect(dotted.render("", rec({ service: { name: "Bad Name" } }))).toMatchObject({ problem: expect.stringContaining("must be lowercase") });
  });

  it("refuses unknown tokens, unclosed references and invalid literal parts at construction", () => {
    expect(() => compileIndexPattern("logs-%{+yyyy.QQ}", "index")).toThrow(InvalidOptionError);
    expect(() => compileIndexPattern("Logs-%{+yyyy}", "index")).toThrow(/must be lowercase/);
    expect(() => compileIndexPattern("logs-%{+yyyy", "index")).toThrow(/close every/);
    expect(() => compileIndexPattern("logs-%{service}", "index")).toThrow(/%\{\[field\]\[path\]\}/);
    expect(() => compileIndexPattern("", "index")).toThrow("Expected `index` to be a non-empty string, got `\"\"` (string)");
  });
});

describe("recordTimestamp", () => {
  it("reads a leading canonical @timestamp without parsing the record", () => {
    const get = () => {
      throw new Error("must not parse");
    };
    expect(recordTimestamp('{"@timestamp":"2024-05-01T12:00:00.000Z","message":"x"}', get)).toBe("2024-05-01T12:00:00.000Z");
  });

  it("falls back to the record when @timestamp is not first, and says undefined when there is none", () => {
    expect(recordTimestamp('{"message":"x"}', () => rec({ "@timestamp": "2024-05-01T12:00:00+02:00" }))).toBe("2024-05-01T10:00:00.000Z");
    expect(recordTimestamp('{"message":"x"}', () => ({ message: "x" }) as unknown as LogRecord)).toBeUndefined();
  });
});

describe("deterministicId", () => {
  const json = '{"@timestamp":"2024-05-01T12:00:00.000Z","message":"hello"}';
  it("is stable, 20 base64url characters, and depends on the source", () => {
    const a = deterministicId("app", json, () => JSON.parse(json));
    expect(a).toMatch(/^[A-Za-z0-9_-]{20}$/);
    expect(deterministicId("app", json, () => JSON.parse(json))).toBe(a);
    expect(deterministicId("other", json, () => JSON.parse(json))).not.toBe(a);
    expect(deterministicId("app", json.replace("hello", "hello!"), () => JSON.parse(json))).not.toBe(a);
  });

  it("uses file identity + offset + message when the record has an offset, ignoring other fields", () => {
    const r1 = rec({ message: "line", log: { offset: 120, file: { path: "/var/log/a.log", inode: "42" } } });
    const r2 = { ...r1, "@timestamp": "2030-01-01T00:00:00.000Z", labels: { enriched: "later" } };
    const id1 = deterministicId("files", JSON.stringify(r1), () => r1);
    expect(deterministicId("files", JSON.stringify(r2), () => r2)).toBe(id1);
    const otherOffset = rec({ message: "line", log: { offset: 121, file: { path: "/var/log/a.log", inode: "42" } } });
    expect(deterministicId("files", JSON.stringify(otherOffset), () => otherOffset)).not.toBe(id1);
    const otherInode = rec({ message: "line", log: { offset: 120, file: { path: "/var/log/a.log", inode: "43" } } });
    expect(deterministicId("files", JSON.stringify(otherInode), () => otherInode)).not.toBe(id1);
    const rotated = rec({ message: "another line", log: { offset: 120, file: { path: "/var/log/a.log", inode: "42" } } });
    expect(deterministicId("files", JSON.stringify(rotated), () => rotated)).not.toBe(id1);
  });

  it("tells two hosts shipping the same line of the same path apart (host.name is in the key)", () => {
    const line = (host: string): LogRecord =>
      rec({ message: "line", host: { name: host }, log: { offset: 0, file: { path: "/var/log/app.log", device_id: "2049", inode: "42" } } });
    const id = (r: LogRecord) => deterministicId("app", JSON.stringify(r), () => r);
    expect(id(line("web-1"))).not.toBe(id(line("web-2")));
    expect(id(line("web-1"))).toBe(id(line("web-1")));
    // Replays on the same host keep their id whatever else the record says.
    expect(id({ ...line("web-1"), "@timestamp": "2030-01-01T00:00:00.000Z", labels: { x: "y" } })).toBe(id(line("web-1")));
  });

  it("tells a rotated file's successor apart: same path, offset and message, another device or inode", () => {
    const line = (device_id: string, inode: string): LogRecord =>
      rec({ message: "request completed", host: { name: "h" }, log: { offset: 0, file: { path: "/var/log/app.log", device_id, inode } } });
    const id = (r: LogRecord) => deterministicId("app", JSON.stringify(r), () => r);
    expect(id(line("2049", "42"))).not.toBe(id(line("2049", "43")));
    expect(id(line("2049", "42"))).not.toBe(id(line("2050", "42")));
  });
});
