// GelfSink validates its options synchronously in the constructor and names what it expected and what it got.
import { describe, expect, it } from "vitest";
import { InvalidOptionError } from "../../../src/errors.js";
import { GelfSink, type GelfSinkOptions } from "../../../src/sinks/gelf.js";

const make = (o: Partial<GelfSinkOptions>): GelfSink => new GelfSink({ name: "g", url: "udp://127.0.0.1:12201", ...o } as GelfSinkOptions);

describe("GelfSink options", () => {
  it.each<[string, Partial<GelfSinkOptions>, RegExp]>([
    ["bad scheme", { url: "ftp://x" }, /Expected `url` to use one of udp:\/\/, tcp:\/\/.*got `ftp:\/\/`/],
    ["unparseable url", { url: "not a url" }, /Expected `url` to be a URL.*got an unparseable string/],
    ["chunkSize too small", { chunkSize: -1 }, /Expected `chunkSize` to be an integer between 64 and 65507, got `-1` \(number\)/],
    ["chunkSize too big", { chunkSize: 70000 }, /between 64 and 65507, got `70000`/],
    ["compression", { compression: "brotli" as never }, /Expected `compression` to be one of "gzip", "zlib", "none", got `"brotli"`/],
    ["compressed TCP", { url: "tcp://127.0.0.1:1", compression: "gzip" }, /Expected `compression` to be "none" for GELF over TCP/],
    ["level out of range", { levels: { error: 9 } }, /Expected `levels.error` to be an integer between 0 and 7, got `9`/],
    ["unknown level", { levels: { loud: 1 } as never }, /Expected `levels` keys to be one of/],
    ["tls on udp", { tls: {} }, /Expected no `tls` option with udp:/],
    ["rejectUnauthorized false", { url: "tls://127.0.0.1:1", tls: { rejectUnauthorized: false as never } }, /insecureSkipVerify/],
    ["cert without key", { url: "tls://127.0.0.1:1", tls: { cert: "x" } }, /`tls.cert` and `tls.key` to be set together/],
    ["empty name", { name: "" }, /Expected `name` to be a non-empty string, got `""`/],
    ["negative timeout", { url: "tcp://127.0.0.1:1", requestTimeoutMs: 0 }, /Expected `requestTimeoutMs` to be an integer between 1 and/],
  ])("%s", (_n, o, message) => {
    let caught: unknown;
    try {
      make(o);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionError);
    expect((caught as InvalidOptionError).code).toBe("ERR_INVALID_OPTION");
    expect((caught as Error).message).toMatch(message);
  });

  it("does not echo a password from an unparseable or userinfo URL", () => {
    expect(() => make({ url: "udp://user:hunter2@127.0.0.1:1" })).toThrow(/got userinfo/);
    try {
      make({ url: "udp://user:hunter2@127.0.0.1:1" });
    } catch (error) {
      expect((error as Error).message).not.toContain("hunter2");
    }
  });

  it("accepts the documented profiles", () => {
    expect(() => make({ chunkSize: "lan" })).not.toThrow();
    expect(() => make({ chunkSize: "wan", compression: "zlib" })).not.toThrow();
    expect(() => make({ url: "https://127.0.0.1/gelf", bulk: true, compression: "gzip", tls: { insecureSkipVerify: true } })).not.toThrow();
  });
});
