// NetworkSource with `parser: "syslog"` through a real collector child and real sockets on 127.0.0.1: syslog over
// UDP (`udp://`, one message per datagram) and over TCP (newline framing), JSON datagrams over `udp://`, and, where
// util-linux's `logger` is installed, messages written by that independent implementation of RFC 5424 and 3164.
import { execFileSync, spawnSync } from "node:child_process";
import { type Socket as UdpSocket, createSocket } from "node:dgram";
import { type Socket, connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator, MemorySink } from "../../../src/index.js";
import { NetworkSource, type NetworkSourceOptions } from "../../../src/sources/network-source.js";
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
  it.skipIf(!hasLogger)("messages from util-linux logger over UDP (RFC 5424 with structured data) and TCP (RFC 3164)", async () => {
    const { mem, port } = await start({ name: "logger", listen: ["udp://127.0.0.1:0", "tcp://127.0.0.1:0"], parser: "syslog" });
    execFileSync("logger", ["--server", "127.0.0.1", "--port", String(port(0)), "--udp", "--rfc5424", "--tag", "billing", "--priority", "local3.err", "--msgid", "PAY1", "--sd-id", "order@32473", "--sd-param", 'id="A-17"', "payment declined"]);
    execFileSync("logger", ["--server", "127.0.0.1", "--port", String(port(1)), "--tcp", "--rfc3164", "--tag", "cron", "--priority", "cron.notice", "nightly job done"]);
    await waitFor(() => mem.count === 2, { timeout: 10_000, message: () => `2 records from logger, got ${mem.count}: ${JSON.stringify(mem.records)}` });
    expect(byMessage(mem, "payment declined")).toMatchObject({
      log: { level: "error", syslog: { facility: { name: "local3" }, severity: { name: "Error" }, version: 1, appname: "billing", msgid: "PAY1", structured_data: { "order@32473": { id: "A-17" } } } },
    });
    expect(byMessage(mem, "nightly job done")).toMatchObject({ log: { level: "info", syslog: { facility: { name: "cron" }, severity: { code: 5 }, appname: "cron" } } });
  });
});
