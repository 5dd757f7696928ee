// Parser "syslog": RFC 5424 (the RFC's own examples) and BSD syslog as daemons send and write it, into log.syslog.*,
// and what buildRecord makes of it.
import { describe, expect, it } from "vitest";
import { buildRecord, createParser, parseSyslog, type ParsedLine } from "../../../src/collector/parse/index.js";

const plain = (p: ParsedLine) => ({ ...p, fields: p.fields === undefined ? undefined : JSON.parse(JSON.stringify(p.fields)) });
const BOM = "\uFEFF";
/** 2024-01-01T00:00:00Z: a BSD October date is then last year's. */
const NEW_YEAR = Date.UTC(2024, 0, 1);

describe("syslog parser: RFC 5424", () => {
  it("parses the RFC's first example: priority, facility and severity, header fields, a BOM dropped", () => {
    const line = `<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - ${BOM}'su root' failed for lonvick on /dev/pts/8`;
    expect(plain(parseSyslog(line))).toEqual({
      line,
      fields: {
        "log.level": "fatal",
        "@timestamp": "2003-10-11T22:14:15.003Z",
        message: "'su root' failed for lonvick on /dev/pts/8",
        host: "mymachine.example.com",
        process: { name: "su" },
        log: {
          syslog: {
            priority: 34,
            facility: { code: 4, name: "auth" },
            severity: { code: 2, name: "Critical" },
            version: 1,
            hostname: "mymachine.example.com",
            appname: "su",
            msgid: "ID47",
          },
        },
      },
    });
  });

  it("reads structured data, several elements, escapes, a zone offset, a numeric proc id and a message", () => {
    const line =
      '<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high" q="a\\"b\\\\c\\]d\\e"] ' +
      `${BOM}An application event log entry...`;
    const f = plain(parseSyslog(line)).fields;
    expect(f).toMatchObject({
      "log.level": "info",
      "@timestamp": "2003-08-24T12:14:15.000Z",
      message: "An application event log entry...",
      host: "192.0.2.1",
      process: { name: "myproc", pid: 8710 },
    });
    expect(f.log.syslog).toEqual({
      priority: 165,
      facility: { code: 20, name: "local4" },
      severity: { code: 5, name: "Notice" },
      version: 1,
      hostname: "192.0.2.1",
      appname: "myproc",
      procid: "8710",
      structured_data: {
        "exampleSDID@32473": { iut: "3", eventSource: "Application", eventID: "1011" },
        "examplePriority@32473": { class: "high", q: 'a"b\\c]d\\e' },
      },
    });
  });

  it("takes NILVALUEs as absent and a message-less record as an empty message", () => {
    const f = plain(parseSyslog('<14>1 - - - - - [id a="1"]')).fields;
    expect(f).toEqual({ "log.level": "info", message: "", log: { syslog: { priority: 14, facility: { code: 1, name: "user" }, severity: { code: 6, name: "Informational" }, version: 1, structured_data: { id: { a: "1" } } } } });
    // An unparseable timestamp stays visible (buildRecord moves it to @timestamp_raw).
    expect(parseSyslog("<14>1 yesterday h a p m - x").fields!["@timestamp"]).toBe("yesterday");
  });

  it("drops __proto__ structured-data ids and names without touching Object.prototype", () => {
    const f = parseSyslog('<14>1 - h a - - [__proto__ polluted="yes"][ok __proto__="x" b="2"] m').fields!;
    const sd = (f["log"] as { syslog: { structured_data: Record<string, unknown> } }).syslog.structured_data;
    expect(JSON.parse(JSON.stringify(sd))).toEqual({ ok: { b: "2" } });
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it.each([
    ["a header cut short", "<14>1 2003-10-11T22:14:15.003Z host app"],
    ["structured data without its bracket", '<14>1 - h a - - [id a="1" m'],
    ["structured data with an unquoted value", "<14>1 - h a - - [id a=1] m"],
    ["no space before the message", '<14>1 - h a - - [id a="1"]m'],
  ])("refuses %s", (_name, line) => {
    expect(parseSyslog(line)).toEqual({ line, fields: undefined, error: "not_syslog" });
  });
});

describe("syslog parser: BSD (RFC 3164) and syslog files", () => {
  it("parses the RFC's example: a timestamp without a year is last year's when this year's would be ahead", () => {
    const line = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8";
    expect(plain(parseSyslog(line, NEW_YEAR)).fields).toEqual({
      "log.level": "fatal",
      "@timestamp": "2023-10-11T22:14:15.000Z",
      message: "'su root' failed for lonvick on /dev/pts/8",
      host: "mymachine",
      process: { name: "su" },
      log: { syslog: { priority: 34, facility: { code: 4, name: "auth" }, severity: { code: 2, name: "Critical" }, hostname: "mymachine", appname: "su" } },
    });
    // In late October the same line is this year's.
    expect(parseSyslog(line, Date.UTC(2024, 9, 20)).fields!["@timestamp"]).toBe("2024-10-11T22:14:15.000Z");
  });

  it("parses a line of /var/log/syslog (no priority, the day space-padded, a pid) and rsyslog's high-precision format", () => {
    expect(plain(parseSyslog("Oct  1 08:00:00 web-01 sshd[812]: Accepted publickey for deploy", NEW_YEAR)).fields).toEqual({
      "@timestamp": "2023-10-01T08:00:00.000Z",
      message: "Accepted publickey for deploy",
      host: "web-01",
      process: { name: "sshd", pid: 812 },
      log: { syslog: { hostname: "web-01", appname: "sshd", procid: "812" } },
    });
    expect(plain(parseSyslog("2024-01-15T10:00:00.123456+01:00 web-01 kernel: eth0: link up")).fields).toEqual({
      "@timestamp": "2024-01-15T09:00:00.123Z",
      message: "eth0: link up",
      host: "web-01",
      process: { name: "kernel" },
      log: { syslog: { hostname: "web-01", appname: "kernel" } },
    });
    expect(parseSyslog("Mar 03 2024 10:11:12 fw01 ipsec: up", NEW_YEAR).fields!["@timestamp"]).toBe("2024-03-03T10:11:12.000Z");
  });

  it("takes a tag right after the timestamp as the tag (no host), and a message without a tag as it is", () => {
    const noHost = parseSyslog("<13>Jan  2 03:04:05 app[7]: hello", NEW_YEAR).fields!;
    expect(noHost["host"]).toBeUndefined();
    expect(noHost).toMatchObject({ message: "hello", process: { name: "app", pid: 7 } });
    expect(parseSyslog("<13>Jan  2 03:04:05 host just words", NEW_YEAR).fields).toMatchObject({ host: "host", message: "just words" });
  });

  it("keeps a BSD message whose header is missing or wrong whole, with its priority (RFC 3164 4.3.3)", () => {
    expect(plain(parseSyslog("<13>just a message")).fields).toEqual({
      "log.level": "info",
      message: "just a message",
      log: { syslog: { priority: 13, facility: { code: 1, name: "user" }, severity: { code: 5, name: "Notice" } } },
    });
    expect(parseSyslog("<13>Feb 30 10:00:00 host app: x").fields).toMatchObject({ message: "Feb 30 10:00:00 host app: x" });
  });

  it.each([["plain text", "hello world"], ["a priority over 191", "<192>Oct 11 22:14:15 h a: m"], ["a zero-padded priority", "<013>x"], ["an unclosed priority", "<13 x"], ["a file line with a bad date", "Oct 32 10:00:00 h a: m"]])(
    "refuses %s",
    (_name, line) => {
      expect(parseSyslog(line)).toEqual({ line, fields: undefined, error: "not_syslog" });
    },
  );

  it("is blank for a blank line and strips one trailing CR", () => {
    expect(parseSyslog("  ")).toEqual({ line: "  ", fields: undefined, blank: true });
    expect(parseSyslog("<13>x\r").fields).toMatchObject({ message: "x" });
  });
});

describe('createParser("syslog") and buildRecord', () => {
  it("builds an ECS record: log.level and log.syslog, host.name and process from the message", () => {
    const parse = createParser("syslog");
    const record = buildRecord(parse("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 - An event"), {
      now: "2020-01-01T00:00:00.000Z",
      source: "syslog-in",
    });
    expect(JSON.parse(JSON.stringify(record))).toEqual({
      "@timestamp": "2003-10-11T22:14:15.003Z",
      message: "An event",
      log: {
        level: "info",
        syslog: { priority: 165, facility: { code: 20, name: "local4" }, severity: { code: 5, name: "Notice" }, version: 1, hostname: "mymachine.example.com", appname: "evntslog", procid: "42", msgid: "ID47" },
      },
      host: { name: "mymachine.example.com" },
      process: { name: "evntslog", pid: 42 },
      service: { name: "syslog-in" },
    });
    // Not syslog: a plain message with the parse error, as the other parsers do.
    const bad = buildRecord(parse("not syslog"), { now: "2020-01-01T00:00:00.000Z" });
    expect(bad).toMatchObject({ message: "not syslog", error: { type: "parse", message: "not_syslog" } });
  });
});

describe('parser { syslog: { timezone } }', () => {
  const berlin = createParser({ syslog: { timezone: "Europe/Berlin" } });
  const at = (line: string) => berlin(line).fields!["@timestamp"];

  it("reads BSD timestamps in the zone, with its daylight-saving offset, and leaves zoned timestamps alone", () => {
    const year = new Date().getUTCFullYear() - 1; // a written year: no inference from the clock
    expect(at(`<13>Jan 15 ${year} 10:00:00 h app: winter`)).toBe(`${year}-01-15T09:00:00.000Z`);
    expect(at(`<13>Jul 15 ${year} 10:00:00 h app: summer`)).toBe(`${year}-07-15T08:00:00.000Z`);
    // RFC 5424 and RFC 3339 timestamps carry their offset.
    expect(at("<13>1 2024-07-15T10:00:00+05:30 h app - - - m")).toBe("2024-07-15T04:30:00.000Z");
    expect(at("2024-07-15T10:00:00Z h app: m")).toBe("2024-07-15T10:00:00.000Z");
    // Without a zone named, the same BSD line is UTC.
    expect(createParser("syslog")(`<13>Jan 15 ${year} 10:00:00 h app: m`).fields!["@timestamp"]).toBe(`${year}-01-15T10:00:00.000Z`);
  });

  it("takes the offset in force at a daylight-saving change, and a wall time the change skipped lands after it", () => {
    // Europe/Berlin, 2024-03-31: 02:00 CET became 03:00 CEST. 01:59:59 was +1; 03:00:00 is +2; 02:30 never happened.
    expect(at("<13>Mar 31 2024 01:59:59 h app: m")).toBe("2024-03-31T00:59:59.000Z");
    expect(at("<13>Mar 31 2024 03:00:00 h app: m")).toBe("2024-03-31T01:00:00.000Z");
    expect(at("<13>Mar 31 2024 02:30:00 h app: m")).toBe("2024-03-31T01:30:00.000Z");
  });

  it("refuses a zone the runtime does not know and a malformed spec, with ERR_INVALID_OPTION", () => {
    expect(() => createParser({ syslog: { timezone: "Mars/Olympus" } })).toThrow(/`parser.syslog.timezone` to be an IANA time zone/);
    expect(() => createParser({ syslog: { timezone: 5 as never } })).toThrow(/IANA time zone/);
    expect(() => createParser({ syslog: "UTC" as never })).toThrow(/`parser.syslog` to be an object/);
    expect(createParser({ syslog: {} })("<13>x").fields).toMatchObject({ message: "x" });
  });
});

