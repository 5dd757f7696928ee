// NetworkSource with `parser: "syslog"` through a real collector child and real sockets on 127.0.0.1: syslog over
// UDP (`udp://`, one message per datagram) and over TCP (newline framing, or octet counting per RFC 6587: frames
// split anywhere, oversized, malformed, and held back by credit), JSON datagrams over `udp://`, and, where
// util-linux's `logger` is installed, messages written by that independent implementation of RFC 5424 and 3164.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Socket as UdpSocket, createSocket } from "node:dgram";
import { type Socket, connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, FileSource, MemorySink } from "../../../src/index.js";
import { NetworkSource, type NetworkSourceOptions } from "../../../src/sources/network-source.js";
import { testPki } from "../../helpers/tls.js";
import { waitFor } from "../../helpers/wait-for.js";

const running: Aggregator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.stop({ timeoutMs: 5_000 }).catch(() => undefined)));
});

async function start(options: NetworkSourceOptions): Promise<{ agg: Aggregator; mem: MemorySink; port: (i?: number) => number }> {
  const agg = new Aggregator({ batch: { maxWaitMs: 10 } });
  const mem = new MemorySink({ name: "mem" });
  const source = new NetworkSource(options);
  agg.addSource(source).addSink(mem);
  running.push(agg);
  await agg.start();
  return { agg, mem, port: (i = 0) => source.addresses[i]!.port };
}

async function udpClient(): Promise<UdpSocket> {
  const s = createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  return s;
}

function send(s: UdpSocket, text: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => s.send(Buffer.from(text), port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));
}

function tcpClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

const byMessage = (mem: MemorySink, message: string) => mem.records.find((r) => r.message === message);

/** An RFC 6587 octet-counted frame: the message's length in bytes, a space, the message. */
const frame = (message: string): string => `${Buffer.byteLength(message)} ${message}`;

function counters(agg: Aggregator, name: string): Record<string, number> {
  return agg.metrics().sources[name]?.collector ?? {};
}

describe('NetworkSource parser: "syslog"', () => {
  it("udp://: RFC 5424 and BSD datagrams become ECS records with log.syslog, the sender's host and address", async () => {
    const { mem, port } = await start({ name: "syslog", listen: "udp://127.0.0.1:0", parser: "syslog" });
    const client = await udpClient();
    try {
      const local = (client.address() as { port: number }).port;
      await send(client, '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 [exampleSDID@32473 iut="3"] An application event\n', port());
      await send(client, "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick", port());
      await send(client, "<13>1 - - - - - - with a trailing CRLF and NUL\r\n\0", port());
      await send(client, "not syslog at all", port());
      await waitFor(() => mem.count === 4, { timeout: 10_000, message: () => `4 records, got ${mem.count}` });
      expect(byMessage(mem, "An application event")).toMatchObject({
        "@timestamp": "2003-10-11T22:14:15.003Z",
        log: {
          level: "info",
          syslog: {
            priority: 165,
            facility: { code: 20, name: "local4" },
            severity: { code: 5, name: "Notice" },
            hostname: "mymachine.example.com",
            appname: "evntslog",
            procid: "42",
            msgid: "ID47",
            structured_data: { "exampleSDID@32473": { iut: "3" } },
          },
        },
        host: { name: "mymachine.example.com" },
        process: { name: "evntslog", pid: 42 },
        client: { ip: "127.0.0.1", port: local },
        service: { name: "syslog" },
      });
      const bsd = byMessage(mem, "'su root' failed for lonvick")!;
      expect(bsd).toMatchObject({ log: { level: "fatal", syslog: { facility: { name: "auth" }, hostname: "mymachine", appname: "su" } }, host: { name: "mymachine" } });
      expect(String(bsd["@timestamp"])).toMatch(/^\d{4}-10-11T22:14:15\.000Z$/);
      expect(byMessage(mem, "with a trailing CRLF and NUL")).toMatchObject({ log: { level: "info", syslog: { priority: 13 } } });
      // Not syslog: shipped as a plain message with the parse error, not lost.
      expect(byMessage(mem, "not syslog at all")).toMatchObject({ error: { type: "parse", message: "not_syslog" } });
    } finally {
      client.close();
    }
  });

  it("tcp://: newline-framed messages, several per write and one split across writes", async () => {
    const { mem, port } = await start({ name: "syslog-tcp", listen: "tcp://127.0.0.1:0", parser: "syslog" });
    const s = await tcpClient(port());
    s.write("<14>1 2024-01-15T10:00:00Z h1 app1 - - - first\n<14>1 2024-01-15T10:00:01Z h1 app1 - - - second\n<11>Jan 15 10:00:02 h2 ");
    await waitFor(() => mem.count === 2, { timeout: 10_000, message: () => `2 records before the rest, got ${mem.count}` });
    s.end("cron[77]: third\n");
    await waitFor(() => mem.count === 3, { timeout: 10_000, message: () => `3 records, got ${mem.count}` });
    expect(mem.messages()).toEqual(["first", "second", "third"]);
    expect(byMessage(mem, "third")).toMatchObject({ log: { level: "error", syslog: { hostname: "h2", appname: "cron", procid: "77" } }, process: { pid: 77 } });
  });

  it("tcp:// with octet counting: frames split anywhere, a message holding newlines stays one, a newline between frames is skipped", async () => {
    const { mem, port } = await start({ name: "octets", listen: "tcp://127.0.0.1:0", parser: "syslog" });
    const s = await tcpClient(port());
    const stream =
      frame("<14>1 2024-01-15T10:00:00Z h app - - - first") +
      frame("<14>1 2024-01-15T10:00:01Z h app - - - Grüße, second") +
      "\n" +
      frame("<11>1 2024-01-15T10:00:02Z h app - - - a stack trace:\n  at f (a.js:1)\n  at g (b.js:2)") +
      frame("<14>Jan 15 10:00:03 h cron[7]: bsd inside a frame\n");
    const bytes = Buffer.from(stream);
    // Cut inside a length, right after a length's space, and inside a multi-byte character.
    const cuts = [1, bytes.indexOf(" ") + 1, bytes.indexOf("ü") + 1, bytes.length - 5];
    let from = 0;
    for (const cut of cuts) {
      s.write(bytes.subarray(from, cut));
      from = cut;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    s.end(bytes.subarray(from));
    await waitFor(() => mem.count === 4, { timeout: 10_000, message: () => `4 records, got ${mem.count}: ${JSON.stringify(mem.messages())}` });
    expect(mem.messages()).toEqual(["first", "Grüße, second", "a stack trace:\n  at f (a.js:1)\n  at g (b.js:2)", "bsd inside a frame"]);
    expect(byMessage(mem, "bsd inside a frame")).toMatchObject({ process: { name: "cron", pid: 7 } });
  });

  it("tcp:// with octet counting: an oversized frame is skipped and counted, a frame without its length closes the connection", async () => {
    const { agg, mem, port } = await start({ name: "bad", listen: "tcp://127.0.0.1:0", parser: "syslog", maxMessageBytes: 1024 });
    const s = await tcpClient(port());
    s.write(frame(`<14>1 - h app - - - ${"x".repeat(5_000)}`) + frame("<14>1 - h app - - - after the big one"));
    await waitFor(() => mem.count === 1, { timeout: 10_000, message: () => `1 record, got ${mem.count}` });
    expect(mem.messages()).toEqual(["after the big one"]);
    const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
    s.on("error", () => undefined);
    s.write("<14>1 - h app - - - no length");
    await closed;
    await waitFor(() => counters(agg, "bad")["framingErrors"] === 1 && counters(agg, "bad")["oversizedLines"] === 1, {
      timeout: 10_000,
      message: () => `framingErrors 1 and oversizedLines 1, got ${JSON.stringify(counters(agg, "bad"))}`,
    });
    expect(mem.count).toBe(1);
  });

  it("tcp:// with octet counting stops at the frame where credit ran out, and every frame arrives once the sink takes them", async () => {
    const credit = 100;
    const agg = new Aggregator({ batch: { maxWaitMs: 10, maxRecords: 20 }, queue: { maxRecords: 50, whenFull: "block" }, credit: { records: credit } });
    const mem = new MemorySink({ name: "mem" });
    const source = new NetworkSource({ name: "held", listen: "tcp://127.0.0.1:0", parser: "syslog" });
    agg.addSource(source).addSink(mem);
    running.push(agg);
    await agg.start();
    mem.block();
    const total = 5_000;
    const s = await tcpClient(source.addresses[0]!.port);
    let all = "";
    for (let i = 0; i < total; i++) all += frame(`<14>1 - h app - - - m${i}`);
    s.end(all);
    await waitFor(() => (counters(agg, "held")["pauses"] ?? 0) >= 1, { timeout: 15_000, message: () => `a pause for credit, ${JSON.stringify(counters(agg, "held"))}` });
    const m = agg.metrics().sources.held!;
    // The host holds its queue and at most the window besides: the collector stopped at a frame, not at a read's end.
    expect(m.emitted).toBeLessThanOrEqual(50 + credit + 1);
    mem.unblock();
    await mem.waitForCount(total, { timeout: 30_000 });
    expect(mem.messages()).toEqual(Array.from({ length: total }, (_, i) => `m${i}`));
  });

  it("tls:// with octet counting, as RFC 5425 prescribes for syslog over TLS", async () => {
    const pki = testPki();
    const { mem, port } = await start({ name: "tls", listen: "tls://127.0.0.1:0", parser: "syslog", tls: { cert: pki.serverCert, key: pki.serverKey } });
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = tlsConnect({ host: "127.0.0.1", port: port(), ca: pki.ca }, () => resolve(c));
      c.once("error", reject);
    });
    s.end(frame("<13>1 2024-01-15T10:00:00Z h app - - - secure one") + frame("<13>1 2024-01-15T10:00:01Z h app - - - secure two"));
    await waitFor(() => mem.count === 2, { timeout: 10_000, message: () => `2 records, got ${mem.count}` });
    expect(mem.messages()).toEqual(["secure one", "secure two"]);
  });

  it("udp:// with the default JSON parser: one JSON object per datagram", async () => {
    const { mem, port } = await start({ name: "json-udp", listen: "udp://127.0.0.1:0" });
    const client = await udpClient();
    try {
      await send(client, JSON.stringify({ msg: "one", level: "warn", n: 1 }), port());
      await send(client, `${JSON.stringify({ message: "two", n: 2 })}\n`, port());
      await waitFor(() => mem.count === 2, { timeout: 10_000, message: () => `2 records, got ${mem.count}` });
      expect(byMessage(mem, "one")).toMatchObject({ n: 1, log: { level: "warn" }, client: { ip: "127.0.0.1" } });
      expect(byMessage(mem, "two")).toMatchObject({ n: 2 });
    } finally {
      client.close();
    }
  });

  // util-linux's logger: a syslog sender we did not write. Not every machine has it.
  const hasLogger = spawnSync("logger", ["--help"]).status === 0;
  it.skipIf(!hasLogger)("messages from util-linux logger over UDP (RFC 5424 with structured data) and TCP (RFC 3164; RFC 5424 octet-counted)", async () => {
    const { mem, port } = await start({ name: "logger", listen: ["udp://127.0.0.1:0", "tcp://127.0.0.1:0"], parser: "syslog" });
    execFileSync("logger", ["--server", "127.0.0.1", "--port", String(port(0)), "--udp", "--rfc5424", "--tag", "billing", "--priority", "local3.err", "--msgid", "PAY1", "--sd-id", "order@32473", "--sd-param", 'id="A-17"', "payment declined"]);
    execFileSync("logger", ["--server", "127.0.0.1", "--port", String(port(1)), "--tcp", "--rfc3164", "--tag", "cron", "--priority", "cron.notice", "nightly job done"]);
    await waitFor(() => mem.count === 2, { timeout: 10_000, message: () => `2 records from logger, got ${mem.count}: ${JSON.stringify(mem.records)}` });
    expect(byMessage(mem, "payment declined")).toMatchObject({
      log: { level: "error", syslog: { facility: { name: "local3" }, severity: { name: "Error" }, version: 1, appname: "billing", msgid: "PAY1", structured_data: { "order@32473": { id: "A-17" } } } },
    });
    expect(byMessage(mem, "nightly job done")).toMatchObject({ log: { level: "info", syslog: { facility: { name: "cron" }, severity: { code: 5 }, appname: "cron" } } });
    // And with octet counting over TCP.
    execFileSync("logger", ["--server", "127.0.0.1", "--port", String(port(1)), "--tcp", "--octet-count", "--rfc5424", "--tag", "app", "framed by length"]);
    await waitFor(() => mem.count === 3, { timeout: 10_000, message: () => `3 records from logger, got ${mem.count}: ${JSON.stringify(mem.messages())}` });
    expect(byMessage(mem, "framed by length")).toMatchObject({ log: { syslog: { version: 1, appname: "app" } } });
  });
});

describe('FileSource parser: { syslog: { timezone } }', () => {
  it("reads a syslog file's BSD timestamps in the zone named, in the collector child", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cla-syslog-"));
    try {
      writeFileSync(join(dir, "syslog"), "Jan 15 2024 10:00:00 web-01 sshd[812]: Accepted publickey\nJul 15 2024 10:00:00 web-01 cron[9]: (root) CMD (run-parts)\n");
      const agg = new Aggregator({ batch: { maxWaitMs: 10 } });
      const mem = new MemorySink({ name: "mem" });
      agg.addSource(new FileSource({ name: "syslog-file", paths: [join(dir, "syslog")], startAt: "beginning", parser: { syslog: { timezone: "America/New_York" } } })).addSink(mem);
      running.push(agg);
      await agg.start();
      await waitFor(() => mem.count === 2, { timeout: 10_000, message: () => `2 records, got ${mem.count}` });
      expect(mem.records.map((r) => [r["@timestamp"], r.message])).toEqual([
        ["2024-01-15T15:00:00.000Z", "Accepted publickey"],
        ["2024-07-15T14:00:00.000Z", "(root) CMD (run-parts)"],
      ]);
      expect(() => new FileSource({ name: "bad", paths: ["x"], parser: { syslog: { timezone: "Nowhere/Town" } } })).toThrow(/IANA time zone/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

