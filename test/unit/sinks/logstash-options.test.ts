// LogstashSink validates its options synchronously in the constructor.
import { describe, expect, it } from "vitest";
import { InvalidOptionError } from "../../../src/errors.js";
import { LogstashSink, type LogstashSinkOptions } from "../../../src/sinks/logstash.js";
import { parseRetryAfter } from "../../../src/sinks/transport/http-post.js";

const make = (o: Partial<LogstashSinkOptions>): LogstashSink =>
  new LogstashSink({ name: "ls", url: "http://127.0.0.1:8080", ...o } as LogstashSinkOptions);

describe("LogstashSink options", () => {
  it.each<[string, Partial<LogstashSinkOptions>, RegExp]>([
    ["udp is not a Logstash transport here", { url: "udp://127.0.0.1:5000" }, /Expected `url` to use one of http:\/\/, https:\/\/, tcp:\/\/, tls:\/\/, got `udp:\/\/`/],
    ["tcp needs a port", { url: "tcp://127.0.0.1" }, /Expected `url` to include a port for tcp:\/\/, got none/],
    ["format", { format: "xml" as never }, /Expected `format` to be one of "ndjson", "json_array", got `"xml"`/],
    ["format on tcp", { url: "tcp://127.0.0.1:5000", format: "ndjson" }, /Expected no `format`/],
    ["auth shape", { auth: { username: "u" } as never }, /Expected `auth` to be an object with string `username` and `password`, got an object without both strings/],
    ["header value type", { headers: { "x-token": 5 as never } }, /Expected `headers.x-token` to be a string, got a number/],
    ["reconnect order", { url: "tcp://127.0.0.1:5000", reconnect: { initialDelayMs: 100, maxDelayMs: 10 } }, /Expected `reconnect.maxDelayMs` to be an integer between 100 and/],
  ])("%s", (_n, o, message) => {
    expect(() => make(o)).toThrow(InvalidOptionError);
    expect(() => make(o)).toThrow(message);
  });

  it("never echoes a header value or password in a validation message", () => {
    try {
      make({ url: "tcp://u:topsecret@127.0.0.1:5000" });
    } catch (error) {
      expect((error as Error).message).not.toContain("topsecret");
    }
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2024-05-01T12:00:00Z");
  it.each<[string | undefined, number | undefined]>([
    ["5", 5000],
    [" 0 ", 0],
    ["Wed, 01 May 2024 12:00:30 GMT", 30_000],
    ["Wed, 01 May 2024 11:00:00 GMT", 0],
    ["soon", undefined],
    [undefined, undefined],
  ])("%s → %s ms", (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
});
