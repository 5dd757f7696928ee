// buildRecord: message / level / timestamp extraction, enrichment, ECS placement and pollution safety.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { LineSplitter } from "../../../src/collector/line-splitter.js";
import { buildRecord, createParser, type RecordContext } from "../../../src/collector/parse/index.js";
import { serializeRecord } from "../../../src/pipeline/serialize.js";

const NOW = "2030-01-01T00:00:00.000Z";
const ctx: RecordContext = { now: NOW, source: "app", host: "collector-host" };

function fixtureLines(name: string): string[] {
  const lines: string[] = [];
  const s = new LineSplitter({}, (t) => lines.push(t));
  s.push(readFileSync(new URL(`../../fixtures/parse/${name}`, import.meta.url)));
  s.flush();
  return lines;
}

describe("buildRecord over app.ndjson", () => {
  const json = createParser("json");
  const records = fixtureLines("app.ndjson").map((l) => buildRecord(json(l), ctx));

  it.each([
    // i, @timestamp, message, log.level
    [0, "2024-01-15T10:00:00.123Z", "request completed", "info"], // pino: numeric level, epoch ms
    [1, "2024-01-15T10:00:00.456Z", "disk almost full", "warn"], // ECS: "@timestamp", dotted "log.level"
    [2, "2024-01-15T10:00:01.000Z", "container says hello", undefined], // Docker json-file: "log", trailing \n dropped
    [3, "2024-01-15T10:00:02.789Z", "payment failed", "error"], // python-json-logger: levelname, comma fraction
    [4, "2024-01-15T10:00:03.500Z", "unknown level word stays a field", undefined],
    [5, NOW, "syslog words", "info"],
    [6, NOW, '{"message":{"nested":"object"},"level":"fatal"}', "fatal"],
    [9, NOW, "huge numbers", undefined],
    [10, NOW, "no timestamp here", undefined],
  ])("line %i → @timestamp %s, message %s, level %s", (i, ts, message, level) => {
    const r = records[i]!;
    expect(r["@timestamp"]).toBe(ts);
    expect(r.message).toBe(message);
    expect(r.log?.level).toBe(level);
  });

  it("removes consumed keys and keeps the rest, nested objects nested", () => {
    const r = records[0]!;
    expect(r).not.toHaveProperty("msg");
    expect(r).not.toHaveProperty("level");
    expect(r).not.toHaveProperty("time");
    expect(r["req"]).toEqual({ method: "GET", url: "/api/users", headers: { accept: "application/json" } });
    expect(r["res"]).toEqual({ statusCode: 200 });
    expect(r["pid"]).toBe(4242);
    expect(r["hostname"]).toBe("web-1");
    const ecs = records[1]!;
    expect(ecs).not.toHaveProperty(["log.level"]);
    expect(ecs["ecs.version"]).toBe("8.10.0");
  });

  it("moves a level that is an object aside (log.level_raw): Elasticsearch would reject the record where log.level is a keyword", () => {
    const nested = buildRecord(json('{"message":"x","log":{"level":{"x":1},"logger":"a"}}'), ctx);
    expect(nested.log).toMatchObject({ level_raw: { x: 1 }, logger: "a" });
    expect(nested.log).not.toHaveProperty("level");
    const dotted = buildRecord(json('{"message":"x","log.level":{"x":1}}'), ctx);
    expect(dotted["log.level_raw"]).toEqual({ x: 1 });
    expect(dotted).not.toHaveProperty(["log.level"]);
    // A word it does not know stays where it was (a keyword takes it).
    expect(buildRecord(json('{"message":"x","log":{"level":"chatty"}}'), ctx).log).toMatchObject({ level: "chatty" });
  });

  it("keeps an unknown level value in place", () => {
    expect(records[4]!["lvl"]).toBe("hmmm");
  });

  it("takes the nested log.level (before `severity`) and keeps the rest of the line's log object", () => {
    const r = records[5]!;
    expect(r.log).toEqual({ logger: "auth", level: "info" }); // "5" = syslog notice
    expect(r["severity"]).toBe("Informational"); // not consumed: the ECS form came first
    const sev = buildRecord(createParser("json")('{"severity":"Informational"}'), ctx);
    expect(sev.log?.level).toBe("info");
    expect(sev).not.toHaveProperty("severity");
  });

  it("lets the line name its own service and host; fills them from the context otherwise", () => {
    expect(records[1]!.service).toEqual({ name: "billing", version: "1.2.3" });
    expect(records[1]!.host).toEqual({ name: "db-2" });
    expect(records[0]!.service).toEqual({ name: "app" });
    expect(records[0]!.host).toEqual({ name: "collector-host" });
  });

  it("keeps the ECS shape: scalar host/service → name, other scalars → original", () => {
    const r = records[10]!;
    expect(r.host).toEqual({ name: "edge-7" });
    expect(r.service).toEqual({ name: "gateway" });
    expect(r.event).toEqual({ original: "login" });
  });

  it("moves a non-string message aside and uses the line as message", () => {
    expect(records[6]!["message_raw"]).toEqual({ nested: "object" });
  });

  it("never pollutes Object.prototype and never changes a record's prototype", () => {
    for (const r of records) expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
    const r = records[7]!;
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.hasOwn(r, "__proto__")).toBe(false);
    expect(r["constructor"]).toEqual({ prototype: { polluted: "ctor" } });
    expect(JSON.stringify(r)).not.toContain("__proto__");
  });

  it("marks parse failures ECS-style and keeps the line as message", () => {
    const r = records[14]!;
    expect(r.message).toBe("not json at all");
    expect(r["error"]).toEqual({ type: "parse", message: "invalid_json" });
    expect(r["@timestamp"]).toBe(NOW);
  });

  it("produces records the engine can serialize, for every line of the corpus", () => {
    for (const r of records) expect(serializeRecord(r, NOW).ok).toBe(true);
  });
});

describe("buildRecord over app.logfmt", () => {
  const records = fixtureLines("app.logfmt").map((l) => buildRecord(createParser("logfmt")(l), ctx));
  it.each([
    [0, "2024-01-15T10:00:00.000Z", "user logged in", "info"],
    [1, "2024-01-15T09:00:01.000Z", 'quote "inside" and backslash \\ and = sign', "warn"],
    [2, NOW, "multi\nline", "error"],
    [3, NOW, "ünïcødé", "debug"],
  ])("line %i", (i, ts, message, level) => {
    expect(records[i]!["@timestamp"]).toBe(ts);
    expect(records[i]!.message).toBe(message);
    expect(records[i]!.log?.level).toBe(level);
    expect(Object.getPrototypeOf(records[i])).toBe(Object.prototype);
  });
});

describe("buildRecord context and enrichment", () => {
  it("places file path, offset and stream per ECS; file facts override the line", () => {
    const parsed = createParser("json")('{"msg":"x","log":{"file":{"path":"/fake","inode":"7"},"offset":1}}');
    const r = buildRecord(parsed, { now: 0, source: "nginx", host: "h1", filePath: "/var/log/app.log", offset: 4096, stream: "stdout" });
    expect(r.log).toEqual({ file: { path: "/var/log/app.log", inode: "7" }, offset: 4096 });
    expect(r["stream"]).toBe("stdout");
    expect(r["@timestamp"]).toBe("1970-01-01T00:00:00.000Z"); // `now` as epoch ms
  });

  it("writes the file's device and inode as log.file.device_id / inode (strings, after path), over the line's", () => {
    const parsed = createParser("json")('{"msg":"x","log":{"file":{"inode":"7","name":"n"}}}');
    const ctx = { now: NOW, filePath: "/var/log/app.log", fileDeviceId: "2049", fileInode: "18446744073709551615", offset: 0 };
    const r = buildRecord(parsed, ctx);
    expect(r.log).toEqual({ file: { inode: "18446744073709551615", name: "n", path: "/var/log/app.log", device_id: "2049" }, offset: 0 });
    const plain = buildRecord(createParser("plain")("hello"), ctx);
    expect(JSON.stringify(plain.log)).toBe('{"file":{"path":"/var/log/app.log","device_id":"2049","inode":"18446744073709551615"},"offset":0}');
  });

  it("defaults stderr lines to warn, and honours defaultLevel", () => {
    const plain = createParser("plain");
    expect(buildRecord(plain("something"), { now: NOW, stream: "stderr" }).log?.level).toBe("warn");
    expect(buildRecord(plain("ERROR boom"), { now: NOW, stream: "stderr" }).log?.level).toBe("error");
    expect(buildRecord(plain("something"), { now: NOW, defaultLevel: "debug", stream: "stderr" }).log?.level).toBe("debug");
    expect(buildRecord(plain("something"), { now: NOW }).log).toBeUndefined();
  });

  it("merges enrichment fields deeply, winning over the line, without sharing objects between records", () => {
    const fields = { env: "prod", service: { environment: "prod" }, labels: { team: "core" } };
    const json = createParser("json");
    const a = buildRecord(json('{"msg":"a","env":"dev","labels":{"zone":"eu"}}'), { now: NOW, source: "svc", fields });
    const b = buildRecord(json('{"msg":"b"}'), { now: NOW, source: "svc", fields });
    expect(a["env"]).toBe("prod");
    expect(a["labels"]).toEqual({ zone: "eu", team: "core" });
    expect(a.service).toEqual({ name: "svc", environment: "prod" });
    expect(a.service).not.toBe(b.service);
    (a.service as Record<string, unknown>)["name"] = "mutated";
    expect(b.service!.name).toBe("svc");
    expect(fields.service).toEqual({ environment: "prod" }); // the caller's object is untouched
  });

  it("skips __proto__ in enrichment fields (e.g. from a JSON config file)", () => {
    const fields = JSON.parse('{"__proto__":{"polluted":1},"nested":{"__proto__":{"polluted":2}}}') as Record<string, unknown>;
    const r = buildRecord(createParser("plain")("x"), { now: NOW, fields });
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(r["nested"])).toBe(Object.prototype);
    expect(Object.hasOwn(r["nested"] as object, "__proto__")).toBe(false);
  });

  it("keeps the original line when asked, and reads a regex's timestamp and level groups", () => {
    const parse = createParser({ regex: String.raw`^(?<timestamp>\S+ \S+) (?<level>\w+) (?<message>.*)$`, flags: "s" });
    const line = "2024-01-15 10:00:05,456 ERROR Request failed\n\tat x.y(Z.java:1)";
    const r = buildRecord(parse(line), { now: NOW, keepOriginal: true });
    expect(r).toMatchObject({ "@timestamp": "2024-01-15T10:00:05.456Z", message: "Request failed\n\tat x.y(Z.java:1)", log: { level: "error" } });
    expect(r.event).toEqual({ original: line });
    expect(Object.keys(r).sort()).toEqual(["@timestamp", "event", "log", "message"]);
  });

  it("does not retain the context: one mutable context object can serve every line", () => {
    const shared: RecordContext = { now: NOW, offset: 0 };
    const plain = createParser("plain");
    const r1 = buildRecord(plain("a"), shared);
    shared.offset = 2;
    const r2 = buildRecord(plain("b"), shared);
    expect([r1.log?.offset, r2.log?.offset]).toEqual([0, 2]);
  });
});
