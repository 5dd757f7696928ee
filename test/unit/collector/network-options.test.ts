// NetworkSource options: listen URLs (schemes, default loopback host, ports, paths) and the constructor's checks,
// plus the Intake's line handling (peer address, oversized lines, out-of-credit signal) with a fake channel.
import { describe, expect, it } from "vitest";
import { InvalidOptionError } from "../../../src/index.js";
import { newCounters } from "../../../src/collector/network/counters.js";
import { Intake, peerOf } from "../../../src/collector/network/intake.js";
import { LineFlags } from "../../../src/collector/line-splitter.js";
import { NetworkSource, parseListenUrl } from "../../../src/sources/network-source.js";

describe("listen URLs", () => {
  it.each([
    ["gelf+udp://127.0.0.1:12201", { protocol: "gelf+udp", host: "127.0.0.1", port: 12201 }],
    ["gelf+tcp://0.0.0.0", { protocol: "gelf+tcp", host: "0.0.0.0", port: 12201 }],
    ["tcp://:5170", { protocol: "tcp", host: "127.0.0.1", port: 5170 }],
    ["udp://0.0.0.0:514", { protocol: "udp", host: "0.0.0.0", port: 514 }],
    ["gelf+http://0.0.0.0", { protocol: "gelf+http", host: "0.0.0.0", port: 12201, path: "/gelf" }],
    ["gelf+https://127.0.0.1:12202/in", { protocol: "gelf+https", host: "127.0.0.1", port: 12202, path: "/in" }],
    ["tcp://5170", { protocol: "tcp", host: "127.0.0.1", port: 5170 }],
    ["TLS://[::1]:0", { protocol: "tls", host: "::1", port: 0 }],
    ["http://localhost:8080", { protocol: "http", host: "localhost", port: 8080, path: "/" }],
    ["https://10.1.2.3:443/logs/in", { protocol: "https", host: "10.1.2.3", port: 443, path: "/logs/in" }],
  ])("%s", (url, expected) => {
    expect(parseListenUrl(url)).toEqual(expected);
  });

  it.each([
    [12201, /Expected `listen` to be a URL string/],
    ["syslog://127.0.0.1:1", /scheme of `listen` to be one of gelf\+udp:\/\/, gelf\+tcp:\/\/, gelf\+tls:\/\/, gelf\+http:\/\/, gelf\+https:\/\/, udp:\/\/, tcp:\/\//],
    ["udp://127.0.0.1", /to name a port/],
    ["tcp://127.0.0.1", /to name a port/],
    ["tcp://127.0.0.1:65536", /port of `listen` to be an integer between 0 and 65535/],
    ["tcp://127.0.0.1:-1", /port of `listen` to be an integer between 0 and 65535/],
    ["tcp://bad_host!:1", /host of `listen` to be an IP address or a host name/],
    ["tcp://[zz]:1", /IPv6 address inside \[\]/],
    ["tcp://127.0.0.1:1/path", /no path/],
    ["http://127.0.0.1:1/a?b=1", /plain path without query/],
  ])("refuses %s", (url, message) => {
    expect(() => parseListenUrl(url)).toThrow(message);
  });
});

describe("NetworkSource options", () => {
  it("validates in the constructor with the offending value in the message", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ listen: [] }, /Expected `listen` to be a URL or a non-empty array of URLs, got/],
      [{ listen: ["tcp://:1", "ftp://:2"] }, /`listen\[1\]`/],
      [{ listen: ["tcp://:5170", "http://127.0.0.1:5170"] }, /used once per transport/],
      [{ listen: "tls://:1" }, /Expected `tls` \(\{ cert, key \}\)/],
      [{ listen: "tcp://:1", tls: { cert: "-----BEGIN x", key: "-----BEGIN y" } }, /plain text/],
      [{ listen: "tls://:1", tls: { cert: "/no/such/file.pem", key: "-----BEGIN y" } }, /`tls.cert` to be PEM text or the path of an existing file/],
      [{ listen: "tls://:1", tls: { cert: "-----BEGIN x", key: "-----BEGIN y", requireClientCert: true } }, /`tls.ca`/],
      [{ listen: "tcp://:1", maxMessageBytes: 0 }, /Expected `maxMessageBytes` to be an integer ≥ 16, got `0`/],
      [{ listen: "tcp://:1", http: { maxBodyBytes: -1 } }, /`http.maxBodyBytes`/],
      [{ listen: "tcp://:1", gelf: { chunkTimeoutMs: 0 } }, /`gelf.chunkTimeoutMs`/],
      [{ listen: "tcp://:1", multiline: "java" }, /no `multiline`/],
      [{ listen: "tcp://:1", maxLineBytes: 100 }, /`maxMessageBytes` rather than `maxLineBytes`/],
      [{ listen: "tcp://:1", idleTimeoutMs: 0 }, /Expected `idleTimeoutMs` to be a positive integer, got `0`/],
      [{ listen: "tcp://:1", http: { bodyIdleTimeoutMs: 0 } }, /`http.bodyIdleTimeoutMs`/],
      [{ listen: "tcp://:1", http: { bodyTimeoutMs: 0 } }, /`http.bodyTimeoutMs`/],
      [{ listen: "tls://:1", tls: { cert: "-----BEGIN x", key: "-----BEGIN y", handshakeTimeoutMs: 0 } }, /`tls.handshakeTimeoutMs`/],
      [{ listen: "gelf+tcp://:1", maxPartialBytes: 1024 * 1024 }, /`maxPartialBytes` to be at least the largest message a gelf\+tcp:\/\/ listener takes \(2097152 bytes\), got `1048576`/],
      [{ listen: "tcp://:1", maxMessageBytes: 4096, maxPartialBytes: 4095 }, /`maxPartialBytes` to be at least/],
    ];
    for (const [o, message] of bad) {
      expect(() => new NetworkSource({ name: "n", ...o } as never), JSON.stringify(o)).toThrow(InvalidOptionError);
      expect(() => new NetworkSource({ name: "n", ...o } as never), JSON.stringify(o)).toThrow(message);
    }
  });

  it("accepts UDP and TCP on the same port, and starts with no addresses", () => {
    const s = new NetworkSource({ name: "n", listen: ["gelf+udp://:12201", "gelf+tcp://:12201"] });
    expect(s.kind).toBe("network");
    expect(s.addresses).toEqual([]);
  });
});

describe("Intake", () => {
  function intake(credit: number) {
    const pushed: string[] = [];
    let outOfCredit = 0;
    const out = {
      push(json: string) {
        pushed.push(json);
        credit--;
        return credit > 0;
      },
      get hasCredit() {
        return credit > 0;
      },
      hasCreditOver(records: number) {
        return credit > records;
      },
    };
    const counters = newCounters();
    const i = new Intake({ source: "net", fields: { env: "test" }, parser: "json", maxGelfBytes: 1_000 }, out, counters, () => outOfCredit++);
    i.stamp();
    return { i, pushed, counters, outOfCredit: () => outOfCredit };
  }

  it("puts the peer on client.ip/port, keeps a sender's own client value, and never stamps our host name", () => {
    const { i, pushed } = intake(10);
    const peer = peerOf("::ffff:10.0.0.9", 5555);
    i.line('{"message":"a"}', 0, peer);
    i.line('{"message":"b","client":{"user":"u"}}', 0, peer);
    i.line('{"message":"c","client":"cli"}', 0, peer);
    const r = pushed.map((p) => JSON.parse(p) as Record<string, unknown>);
    expect(r[0]).toMatchObject({ message: "a", client: { ip: "10.0.0.9", port: 5555 }, env: "test", service: { name: "net" } });
    expect(r[0]).not.toHaveProperty("host");
    expect(r[1]).toMatchObject({ client: { user: "u", ip: "10.0.0.9" } });
    expect(r[2]).toMatchObject({ client: { original: "cli", ip: "10.0.0.9" } });
  });

  it("drops truncated (oversized) lines, counts blanks and parse errors, and signals when credit runs out", () => {
    const { i, pushed, counters, outOfCredit } = intake(2);
    const peer = peerOf("127.0.0.1", 1);
    i.line('{"message":"cut', LineFlags.TRUNCATED, peer);
    i.line("   ", 0, peer);
    i.line("not json", 0, peer);
    expect(outOfCredit()).toBe(0);
    i.line('{"message":"last"}', 0, peer);
    expect(outOfCredit()).toBe(1);
    expect(pushed).toHaveLength(2);
    expect(counters).toMatchObject({ linesRead: 4, oversizedLines: 1, blankLines: 1, parseErrors: 1 });
  });

  it("keeps the UDP reserve: streams stop at it (signalled), UDP ships until the credit is spent", () => {
    const { i, pushed, outOfCredit } = intake(5);
    i.reserveForUdp(2, 0);
    const peer = peerOf("127.0.0.1", 1);
    const gelf = (n: number) => Buffer.from(`{"version":"1.1","host":"h","short_message":"u${n}"}`);
    i.line('{"message":"s1"}', 0, peer);
    i.line('{"message":"s2"}', 0, peer);
    expect([i.hasCredit, outOfCredit()]).toEqual([true, 0]);
    i.line('{"message":"s3"}', 0, peer); // 2 left: the reserve
    expect([i.hasCredit, i.hasUdpCredit, outOfCredit()]).toEqual([false, true, 1]);
    i.gelf(gelf(1), peer);
    expect(i.hasUdpCredit).toBe(true);
    i.gelf(gelf(2), peer);
    expect(i.hasUdpCredit).toBe(false);
    expect(pushed.map((p) => (JSON.parse(p) as { message: string }).message)).toEqual(["s1", "s2", "s3", "u1", "u2"]);
  });

  it("a byte reserve alone (no records reserved) still holds the streams back", () => {
    const bytesLeft = { n: 1_000 };
    const out = {
      push: () => true,
      get hasCredit() {
        return bytesLeft.n > 0;
      },
      hasCreditOver: (_records: number, bytes: number) => bytesLeft.n > bytes,
    };
    const i = new Intake({ source: "net", fields: undefined, parser: "json", maxGelfBytes: 1_000 }, out, newCounters(), () => {});
    i.reserveForUdp(0, 500);
    bytesLeft.n = 400;
    expect([i.hasCredit, i.hasUdpCredit]).toEqual([false, true]);
  });

  it("counts GELF messages with invalid UTF-8 and still ships them, with U+FFFD", () => {
    const { i, pushed, counters } = intake(10);
    const peer = peerOf("127.0.0.1", 1);
    i.gelf(Buffer.from('{"version":"1.1","host":"h","short_message":"caf\u00e9"}'), peer);
    i.gelf(Buffer.concat([Buffer.from('{"version":"1.1","host":"h","short_message":"bad '), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), peer);
    expect(counters.invalidUtf8).toBe(1);
    expect(pushed.map((p) => (JSON.parse(p) as { message: string }).message)).toEqual(["café", "bad \ufffd("]);
  });
});
