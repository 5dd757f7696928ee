// Security defaults, proven end to end: no shell unless asked, loopback-only listeners with size limits, TLS
// verification on for every TLS-speaking sink, credentials absent from everything the library tells its host
// (errors, events, metrics, Prometheus text, the report, dead letters), and private file modes.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createSocket } from "node:dgram";
import { request } from "node:http";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  Aggregator,
  CommandSource,
  ElasticsearchSink,
  FileSink,
  FileSource,
  GelfSink,
  LogstashSink,
  MemorySink,
  NetworkSource,
  type SendResult,
  type Sink,
} from "../../src/index.js";
import { createBatch } from "../../src/testing/create-batch.js";
import { HttpReceiver, type ReceivedRequest, type Responder } from "../helpers/receivers/http.js";
import { StreamReceiver } from "../helpers/receivers/stream.js";
import { testPki } from "../helpers/tls.js";
import { waitFor } from "../helpers/wait-for.js";

const root = mkdtempSync(join(tmpdir(), "cla-security-"));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const signal = (): AbortSignal => AbortSignal.timeout(10_000);

/** The status of a sink's answer for a batch of one record (a bare outcome, `{ outcomes }` or nothing). */
function statusOf(result: SendResult): { status: string; reason?: string; code?: string } {
  if (result === undefined) return { status: "delivered" };
  const o = "outcomes" in result ? result.outcomes[0]! : result;
  const error = "error" in o ? (o.error as { code?: string } | undefined) : undefined;
  return {
    status: o.status,
    ...("reason" in o && o.reason !== undefined ? { reason: o.reason } : {}),
    ...(error?.code ? { code: error.code } : {}),
  };
}

/**
 * A port nothing listens on: tcpmux (1), privileged and outside the ephemeral range. (A port bound to 0 and closed
 * again can be handed to another test's listener a moment later, and then it is not refused at all.)
 */
const REFUSED_PORT = 1;

/** Resolves with the connect error's code (the test asserts ECONNREFUSED as a precondition). */
function connectError(port: number, host = "127.0.0.1"): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect(port, host, () => {
      s.destroy();
      resolve(undefined);
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code));
  });
}

// ── commands and shells ───────────────────────────────────────────────────────────────────────────────────────

describe("CommandSource and the shell", () => {
  const printArgv = "console.log(JSON.stringify(process.argv.slice(1))); setInterval(() => {}, 1e9)";

  it("without `shell`, metacharacters reach the program literally and nothing is executed", async () => {
    const dir = mkdtempSync(join(root, "noshell-"));
    const marker = join(dir, "pwned");
    const hostile = [
      `$(touch ${marker})`,
      `; touch ${marker}`,
      `\`touch ${marker}\``,
      `| touch ${marker}`,
      `&& touch ${marker}`,
      "$HOME",
      "*",
      "'single' \"double\" \\back",
      "a\nb",
    ];
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new CommandSource({ name: "noshell", command: process.execPath, args: ["-e", printArgv, ...hostile] }))
      .addSink(mem);
    cleanups.push(() => agg.stop({ timeoutMs: 10_000 }));
    await agg.start();
    await mem.waitForCount(1, { timeout: 10_000 });
    await agg.stop({ timeoutMs: 10_000 });
    expect(JSON.parse(mem.records[0]!.message)).toEqual(hostile);
    expect(existsSync(marker)).toBe(false);
  });

  it("with `shell: true` the same text is interpreted by /bin/sh (the explicit opt-in works)", async () => {
    const dir = mkdtempSync(join(root, "shell-"));
    const marker = join(dir, "ran");
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new CommandSource({
          name: "shell",
          command: `echo "$((6 * 7)) $(printf expanded)" && touch ${marker} && exec sleep 1000`,
          shell: true,
        }),
      )
      .addSink(mem);
    cleanups.push(() => agg.stop({ timeoutMs: 10_000 }));
    await agg.start();
    await mem.waitForCount(1, { timeout: 10_000 });
    await agg.stop({ timeoutMs: 10_000 });
    expect(mem.messages()).toEqual(["42 expanded"]);
    expect(existsSync(marker)).toBe(true);
  });
});

// ── NetworkSource: where it listens, what it accepts ──────────────────────────────────────────────────────────

function post(port: number, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "POST" }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function sendTcp(port: number, host: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => s.end(payload));
    s.on("error", reject);
    s.on("close", () => resolve());
  });
}

describe("NetworkSource", () => {
  it("binds 127.0.0.1 when the URL names no host, and is not reachable on the machine's other addresses", async () => {
    const source = new NetworkSource({ name: "net", listen: ["tcp://:0", "gelf+udp://:0", "http://:0/ingest", "gelf+tcp://:0"] });
    const agg = new Aggregator().addSource(source).addSink(new MemorySink({ name: "mem" }));
    cleanups.push(() => agg.stop({ timeoutMs: 10_000 }));
    await agg.start();
    expect(source.addresses.map((a) => [a.protocol, a.address])).toEqual([
      ["tcp", "127.0.0.1"],
      ["gelf+udp", "127.0.0.1"],
      ["http", "127.0.0.1"],
      ["gelf+tcp", "127.0.0.1"],
    ]);
    expect(source.addresses.every((a) => a.port > 0 && a.url.includes("://127.0.0.1:"))).toBe(true);
    // A non-loopback IPv4 address of this machine (when it has one) must refuse the connection.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === "IPv4" && !i.internal);
    if (external !== undefined) {
      for (const a of source.addresses.filter((x) => x.protocol !== "gelf+udp")) {
        expect([a.protocol, await connectError(a.port, external.address)]).toEqual([a.protocol, "ECONNREFUSED"]);
      }
    }
  });

  it("enforces maxMessageBytes (TCP lines, GELF over UDP) and http.maxBodyBytes: dropped, counted, 413", async () => {
    const source = new NetworkSource({
      name: "limits",
      listen: ["tcp://:0", "http://:0/ingest", "gelf+udp://:0"],
      maxMessageBytes: 1024,
      http: { maxBodyBytes: 4096 },
    });
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } }).addSource(source).addSink(mem);
    cleanups.push(() => agg.stop({ timeoutMs: 10_000 }));
    await agg.start();
    const [tcp, http, udp] = source.addresses;
    await sendTcp(tcp!.port, "127.0.0.1", `{"msg":"${"a".repeat(5000)}"}\n{"msg":"tcp ok"}\n`);
    expect(await post(http!.port, "/ingest", `{"msg":"${"b".repeat(10_000)}"}\n`)).toBe(413);
    expect(await post(http!.port, "/ingest", '{"msg":"http ok"}\n')).toBe(202);
    const sock = createSocket("udp4");
    const gelf = (message: string): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const datagram = JSON.stringify({ version: "1.1", host: "h", short_message: message });
        sock.send(datagram, udp!.port, "127.0.0.1", (e) => (e ? reject(e) : resolve()));
      });
    await gelf("c".repeat(2000)); // 2 kB uncompressed: over the 1 kB limit
    await gelf("udp ok");
    sock.close();
    await mem.waitForCount(3, { timeout: 10_000 });
    const counters = () => agg.metrics().sources.limits!.collector;
    await waitFor(() => counters().oversizedLines === 1 && counters().httpTooLarge === 1 && counters().gelfTooLarge === 1, {
      timeout: 10_000,
      message: () => `one drop of each kind counted: ${JSON.stringify(counters())}`,
    });
    expect(mem.messages().sort()).toEqual(["http ok", "tcp ok", "udp ok"]);
  });
});

// ── TLS verification is on everywhere ─────────────────────────────────────────────────────────────────────────

describe("TLS verification by default", () => {
  const pki = testPki();
  const serverTls = { key: pki.serverKey, cert: pki.serverCert };
  const record = [{ "@timestamp": "2024-05-01T12:00:00.000Z", message: "over tls" }];

  async function streamSink(make: (url: string, tls: object | undefined) => Sink, delimiter: "\0" | "\n", tls: object | undefined) {
    const rx = await StreamReceiver.start({ delimiter, tls: serverTls });
    const sink = make(`tls://127.0.0.1:${rx.port}`, tls);
    cleanups.push(() => rx.close(), () => sink.close?.({ signal: signal() }));
    return { rx, sink };
  }

  async function httpsSink(make: (url: string, tls: object | undefined) => Sink, tls: object | undefined, responder?: Responder) {
    const rx = await HttpReceiver.start(responder ?? (() => ({ status: 202 })), serverTls);
    const sink = make(`https://127.0.0.1:${rx.port}`, tls);
    cleanups.push(() => rx.close(), () => sink.close?.({ signal: signal() }));
    return { rx, sink };
  }

  const logstash = (url: string, tls: object | undefined): Sink =>
    new LogstashSink({ name: "ls", url, requestTimeoutMs: 5_000, ...(tls && { tls }) });
  const gelf = (url: string, tls: object | undefined): Sink =>
    new GelfSink({ name: "gelf", url: url.startsWith("https") ? `${url}/gelf` : url, requestTimeoutMs: 5_000, ...(tls && { tls }) });
  // A minimal Elasticsearch over HTTPS: answers the bulk request of one record with one created item.
  const esResponder: Responder = (req: ReceivedRequest) => ({
    status: 200,
    headers: { "content-type": "application/json", "x-elastic-product": "Elasticsearch" },
    body: req.url.startsWith("/_bulk") ? JSON.stringify({ took: 1, errors: false, items: [{ create: { status: 201 } }] }) : "{}",
  });
  const es = (url: string, tls: object | undefined): Sink =>
    new ElasticsearchSink({ name: "es", node: url, index: "logs", verifyOnOpen: false, requestTimeoutMs: 5_000, ...(tls && { tls }) });

  const cases: Array<[string, (tls: object | undefined) => Promise<{ rx: { frames?: string[]; requests?: unknown[] }; sink: Sink }>]> = [
    ["LogstashSink tls://", (tls) => streamSink(logstash, "\n", tls)],
    ["LogstashSink https://", (tls) => httpsSink(logstash, tls)],
    ["GelfSink tls://", (tls) => streamSink(gelf, "\0", tls)],
    ["GelfSink https://", (tls) => httpsSink(gelf, tls)],
    ["ElasticsearchSink https://", (tls) => httpsSink(es, tls, esResponder)],
  ];

  const received = (rx: { frames?: string[]; requests?: unknown[] }): number => rx.frames?.length ?? rx.requests?.length ?? 0;

  it.each(cases)("%s: an untrusted server certificate fails with ERR_TLS and nothing is delivered", async (_name, make) => {
    const { rx, sink } = await make(undefined);
    const result = statusOf(await sink.send(createBatch(record), { signal: signal() }));
    expect(result).toMatchObject({ status: "retry", code: "ERR_TLS" });
    expect(received(rx)).toBe(0);
  });

  it.each(cases.filter(([name]) => !name.startsWith("Elasticsearch")))(
    "%s: delivers with `tls.ca`, and with the explicit `tls.insecureSkipVerify: true`",
    async (_name, make) => {
      for (const tls of [{ ca: pki.ca }, { insecureSkipVerify: true }]) {
        const { rx, sink } = await make(tls);
        expect(statusOf(await sink.send(createBatch(record), { signal: signal() }))).toEqual({ status: "delivered" });
        await sink.close?.({ signal: signal() });
        await waitFor(() => received(rx) === 1, { timeout: 5_000, message: `the record over TLS with ${JSON.stringify(Object.keys(tls))}` });
      }
    },
  );

  it("ElasticsearchSink https://: delivers with the CA given to the client (`tls.ca`)", async () => {
    const { rx, sink } = await httpsSink(es, { ca: pki.ca }, esResponder);
    expect(statusOf(await sink.send(createBatch(record), { signal: signal() }))).toEqual({ status: "delivered" });
    expect(rx.requests!.length).toBe(1);
  });

  // Regression test for a fixed bug (src/sinks/elasticsearch/options.ts): the README says "Turning it off takes `tls: { insecureSkipVerify: true }`",
  // but ElasticsearchSink hands `tls` to the official client as node:tls options: `insecureSkipVerify` is silently
  // ignored (verification stays on: safe, but the documented switch does nothing) while the generic
  // `tls: { rejectUnauthorized: false }` turns verification off unchecked. Fix: resolve `tls` through resolveTls()
  // (src/sinks/transport/tls.ts) like the other sinks before passing it to the client.
  it("ElasticsearchSink https:// honours the documented `tls.insecureSkipVerify: true`", async () => {
    const { rx, sink } = await httpsSink(es, { insecureSkipVerify: true }, esResponder);
    expect(statusOf(await sink.send(createBatch(record), { signal: signal() }))).toEqual({ status: "delivered" });
    expect(rx.requests!.length).toBe(1);
  });

  it("`rejectUnauthorized: false` is refused: turning verification off takes `insecureSkipVerify`", () => {
    for (const make of [
      () => new LogstashSink({ name: "ls", url: "tls://127.0.0.1:5000", tls: { rejectUnauthorized: false as never } }),
      () => new LogstashSink({ name: "ls", url: "https://127.0.0.1:8080", tls: { rejectUnauthorized: false as never } }),
      () => new GelfSink({ name: "gelf", url: "tls://127.0.0.1:12201", tls: { rejectUnauthorized: false as never } }),
      () => new GelfSink({ name: "gelf", url: "https://127.0.0.1:12202/gelf", tls: { rejectUnauthorized: false as never } }),
      () => new ElasticsearchSink({ name: "es", node: "https://127.0.0.1:9200", tls: { rejectUnauthorized: false as never } }),
      // A node given as an object with its own `tls` is held to the same policy (it went to the client unchecked).
      () => new ElasticsearchSink({ name: "es", node: { url: new URL("https://127.0.0.1:9200"), tls: { rejectUnauthorized: false } } as never }),
      () => new ElasticsearchSink({ name: "es", node: { url: new URL("https://127.0.0.1:9200"), ssl: { rejectUnauthorized: false } } }),
      () =>
        new ElasticsearchSink({
          name: "es",
          nodes: [{ url: new URL("https://127.0.0.1:9200") }, { url: new URL("https://127.0.0.1:9201"), tls: { rejectUnauthorized: false } } as never],
        }),
      // The client hands `agent` to its HTTP library as it is (undici's `connect`, or node:https agent options).
      () => new ElasticsearchSink({ name: "es", node: "https://127.0.0.1:9200", agent: { connect: { rejectUnauthorized: false } } as never }),
      () => new ElasticsearchSink({ name: "es", node: "https://127.0.0.1:9200", agent: { rejectUnauthorized: false } as never }),
    ]) {
      expect(make).toThrow(expect.objectContaining({ code: "ERR_INVALID_OPTION", message: expect.stringMatching(/insecureSkipVerify/) }));
    }
  });
});

// ── credentials never come back out ───────────────────────────────────────────────────────────────────────────

/** Everything reachable from `value` as text: own properties (enumerable or not), errors' message/stack/cause, Maps. */
function deepText(value: unknown, seen = new Set<unknown>(), depth = 0): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (typeof value === "function" || typeof value === "symbol") return "";
  if (seen.has(value) || depth > 40) return "";
  seen.add(value);
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  const parts: string[] = [];
  if (value instanceof Map) for (const [k, v] of value) parts.push(deepText(k, seen, depth + 1), deepText(v, seen, depth + 1));
  if (value instanceof Set) for (const v of value) parts.push(deepText(v, seen, depth + 1));
  for (const key of Reflect.ownKeys(value as object)) {
    let v: unknown;
    try {
      v = (value as Record<string | symbol, unknown>)[key];
    } catch {
      continue;
    }
    parts.push(String(key), deepText(v, seen, depth + 1));
  }
  if (value instanceof Error) parts.push(value.message, value.stack ?? "", deepText(value.cause, seen, depth + 1));
  return parts.join("\n");
}

describe("credentials", () => {
  it("never appear in errors, events, metrics, Prometheus text, the report or dead letters", async () => {
    const secrets = {
      esUrlPassword: "esUrlPw-7f3a9c",
      esApiKey: "esApiKey-VnVXaGFkZmZ",
      esBearer: "esBearer-eyJhbGciOiJIUzI1",
      esPassword: "esOptPw-2b8e41",
      lsUrlPassword: "lsUrlPw-91c0dd",
      lsAuthPassword: "lsAuthPw-0aa6b3",
      lsBearer: "lsBearer-c29tZXRva2Vu",
      lsApiKeyHeader: "lsXApiKey-d41d8cd9",
      gelfUrlPassword: "gelfUrlPw-5e2f77",
      tlsPassphrase: "tlsPass-6c1f0e",
      // Shapes no pattern knows, echoed back by the server below: found by value.
      esCustomHeader: "esCustomHdr-4a5b6c",
      lsCustomHeader: "lsCustomHdr-8d7e6f",
      lsQuerySig: "lsQuerySig-3c2b1a",
    };
    const basic = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString("base64");
    const forbidden = [
      ...Object.values(secrets),
      basic("elastic", secrets.esUrlPassword),
      basic("elastic", secrets.esPassword),
      basic("shipper", secrets.lsUrlPassword),
      basic("shipper", secrets.lsAuthPassword),
      basic("graylog", secrets.gelfUrlPassword),
    ];
    // A server that refuses every request with 401 and, like some proxies, quotes the credentials it got, then the
    // request's other headers and its URL. The custom ones first: a sink keeps only the start of an answer's body.
    const refusing: Responder = (req) => {
      const custom = Object.entries(req.headers).filter(([k]) => k.startsWith("x-"));
      return {
        status: 401,
        headers: { "content-type": "application/json", "www-authenticate": 'Basic realm="security"' },
        body: JSON.stringify({
          error: {
            type: "security_exception",
            reason: `unable to authenticate with [${req.headers.authorization ?? "none"}] ${custom.map(([k, v]) => `${k} ${String(v)}`).join(" ")} at ${req.url}`,
          },
          status: 401,
        }),
      };
    };
    const rx = await HttpReceiver.start(refusing);
    cleanups.push(() => rx.close());
    const closed = REFUSED_PORT;
    expect(await connectError(closed)).toBe("ECONNREFUSED");
    const pki = testPki();
    const dlqPath = join(mkdtempSync(join(root, "dlq-")), "dead-letters.ndjson");
    const at = `127.0.0.1:${rx.port}`;

    const es = { index: "logs", requestTimeoutMs: 5_000 };
    const ls = { requestTimeoutMs: 5_000 };
    // In this order; the ES sink on the refused port keeps verifyOnOpen (its lastOpenError is scanned too).
    const sinkFactories: Array<() => Sink> = [
      () => new ElasticsearchSink({ ...es, name: "es_url", node: `http://elastic:${secrets.esUrlPassword}@${at}`, verifyOnOpen: false }),
      () => new ElasticsearchSink({ ...es, name: "es_apikey", node: `http://127.0.0.1:${closed}`, auth: { apiKey: secrets.esApiKey } }),
      () => new ElasticsearchSink({ ...es, name: "es_bearer", node: `http://${at}`, auth: { bearer: secrets.esBearer }, verifyOnOpen: false }),
      () =>
        new ElasticsearchSink({
          ...es,
          name: "es_basic",
          node: `http://${at}`,
          auth: { username: "elastic", password: secrets.esPassword },
          headers: { "x-custom-key": secrets.esCustomHeader },
          verifyOnOpen: false,
        }),
      () => new LogstashSink({ ...ls, name: "ls_url", url: `http://shipper:${secrets.lsUrlPassword}@${at}/?sig=${secrets.lsQuerySig}` }),
      () =>
        new LogstashSink({
          ...ls,
          name: "ls_auth",
          url: `https://127.0.0.1:${closed}/`,
          auth: { username: "shipper", password: secrets.lsAuthPassword },
          tls: { ca: pki.ca },
        }),
      () =>
        new LogstashSink({
          ...ls,
          name: "ls_headers",
          url: `http://${at}/`,
          headers: { authorization: `Bearer ${secrets.lsBearer}`, "x-api-key": secrets.lsApiKeyHeader, "x-custom-key": secrets.lsCustomHeader },
        }),
      () => new GelfSink({ ...ls, name: "gelf_url", url: `http://graylog:${secrets.gelfUrlPassword}@${at}/gelf` }),
      () =>
        new LogstashSink({
          ...ls,
          name: "ls_mtls",
          url: `tls://127.0.0.1:${closed}`,
          tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, passphrase: secrets.tlsPassphrase },
          reconnect: { initialDelayMs: 1, maxDelayMs: 5 },
        }),
    ];
    const sinks = sinkFactories.map((make) => make());
    const dlq = new FileSink({ name: "dlq", path: dlqPath, fsync: "batch" });
    const agg = new Aggregator({ batch: { maxWaitMs: 5 }, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    for (const s of sinks) agg.addSink(s, { deadLetter: "dlq" });
    agg.addSink(dlq);
    const events: Array<[string, unknown]> = [];
    for (const name of [
      "drop", "retry", "deadLetter", "delivered", "source:ready", "source:exit", "source:restart", "source:failed",
      "source:error", "source:log", "sink:error", "error",
    ] as const) {
      agg.on(name, (e: unknown) => events.push([name, e]));
    }
    cleanups.push(() => agg.stop({ timeoutMs: 10_000 }));
    await agg.start();
    const records = 3;
    await agg.write(Array.from({ length: records }, (_, i) => ({ message: `record ${i}` })));
    const settled = () => sinks.every((s) => agg.metrics().sinks[s.name]!.deadLettered === records);
    await waitFor(settled, {
      timeout: 45_000,
      message: () => {
        const state = Object.entries(agg.metrics().sinks).map(([k, v]) => `${k}: ${v.deadLettered}/${v.droppedTotal}/${v.pending}`);
        return `every sink dead-lettered ${records} (deadLettered/dropped/pending): ${state.join(", ")}`;
      },
    });
    const metrics = agg.metrics();
    const prometheus = agg.prometheus();
    const report = await agg.stop({ timeoutMs: 10_000 });
    const deadLetters = readFileSync(dlqPath, "utf8");

    // The credentials were really in use: the server saw every one of them.
    const auths = rx.requests.map((r) => `${r.headers.authorization ?? ""} ${r.headers["x-api-key"] ?? ""} ${r.headers["x-custom-key"] ?? ""} ${r.url}`).join("\n");
    for (const expected of [
      `Basic ${basic("elastic", secrets.esUrlPassword)}`,
      `Bearer ${secrets.esBearer}`,
      `Basic ${basic("elastic", secrets.esPassword)}`,
      `Basic ${basic("shipper", secrets.lsUrlPassword)}`,
      `Bearer ${secrets.lsBearer}`,
      secrets.lsApiKeyHeader,
      secrets.esCustomHeader,
      secrets.lsCustomHeader,
      `?sig=${secrets.lsQuerySig}`,
      `Basic ${basic("graylog", secrets.gelfUrlPassword)}`,
    ]) {
      expect(auths).toContain(expected);
    }
    // And the failures were reported: retries with their reasons and dead letters, for every sink.
    const deadLettered = new Set(events.filter(([n]) => n === "deadLetter").map(([, e]) => (e as { sink: string }).sink));
    expect([...deadLettered].sort()).toEqual(sinks.map((s) => s.name).sort());
    expect(events.some(([n, e]) => n === "retry" && (e as { reason: string }).reason === "http_401")).toBe(true);
    expect(deadLetters.trimEnd().split("\n")).toHaveLength(records * sinks.length);
    expect(report.sinks.dlq!.delivered).toBe(records * sinks.length);
    expect(events.length).toBeGreaterThan(sinks.length);

    // sink:error events now carry the sinks' coded errors (scanned above); scan each sink's own answer at the
    // source too: each sink's own answer to a send, error and cause included, as a host would log it.
    const answers: unknown[] = [];
    for (const make of sinkFactories) {
      const sink = make();
      answers.push(await sink.send(createBatch([{ message: "direct" }]), { signal: signal() }));
      await sink.close?.({ signal: signal() });
    }
    expect(answers.map((a) => statusOf(a as SendResult).code)).toEqual([
      "ERR_SINK_AUTH", "ERR_SINK_SEND", "ERR_SINK_AUTH", "ERR_SINK_AUTH", "ERR_SINK_AUTH", "ERR_SINK_SEND", "ERR_SINK_AUTH", "ERR_SINK_AUTH",
      "ERR_SINK_SEND",
    ]);

    const openError = (sinks[1] as ElasticsearchSink).lastOpenError;
    expect(openError).toBeDefined(); // the refused cluster check on open()
    const haystacks: Array<[string, string]> = [
      ["sink answers (deep)", deepText(answers)],
      ["sink answers (inspect)", inspect(answers, { depth: 20, showHidden: true })],
      ["events (deep)", deepText(events)],
      ["events (inspect)", inspect(events, { depth: 20, showHidden: true })],
      ["metrics", deepText(metrics)],
      ["prometheus", prometheus],
      ["report", deepText(report)],
      ["dead letters", deadLetters],
      ["es lastOpenError", deepText(openError) + inspect(openError, { depth: 10 })],
      // A host that prints a sink or the aggregator (console.log, a logger, an error tracker's local variables).
      ["sinks (inspect)", inspect(sinks, { depth: 20, showHidden: true })],
      ["sinks (JSON)", JSON.stringify(sinks)],
      ["aggregator (inspect)", inspect(agg, { depth: 20, showHidden: true })],
    ];
    // The scanner itself sees what hides in a cause chain or a non-enumerable property (else this test proves nothing).
    const probe = new Error("outer", { cause: new Error(`inner ${secrets.esApiKey}`) });
    Object.defineProperty(probe, "hidden", { value: { deeper: secrets.esBearer }, enumerable: false });
    expect(forbidden.filter((s) => deepText([probe]).includes(s))).toEqual([secrets.esApiKey, secrets.esBearer]);
    const leaks = haystacks.flatMap(([where, text]) => forbidden.filter((s) => text.includes(s)).map((s) => `${where}: ${s}`));
    expect(leaks).toEqual([]);
    // The messages stay useful: they still name the endpoint and the status.
    expect(deepText(answers)).toContain(`127.0.0.1:${rx.port}`);
    expect(deepText(answers)).toMatch(/401/);
    expect(deepText(answers)).toContain("Basic [redacted]"); // the quoted header was scrubbed, not absent
  });

  // Regression test for a fixed bug (src/pipeline/sink-pipeline.ts, finishSend/applyOutcomes): when a sink *returns* a retry or rejected outcome
  // carrying a coded `error` (ERR_SINK_AUTH on 401/403, ERR_TLS, ERR_SINK_SEND…), the engine keeps only the reason
  // string: no `sink:error` event is emitted, and the retry/deadLetter/drop events carry no error. The README's error
  // codes for sinks are therefore invisible to the host unless a sink throws (request-error.ts even says the code
  // "reaches the user through the engine's retry events"). Fix: emit `sink:error` once per send for the first outcome
  // error (or put `error` on RetryEvent/DropEvent/DeadLetterEvent), passing it through toSinkError() (it is redacted).
  it("a credential header set on an ElasticsearchSink node object is redacted as one set on the sink", async () => {
    // A gateway that refuses the request and quotes the key it got (as some do).
    const rx = await HttpReceiver.start((req) => ({
      status: 400,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ error: { type: "illegal_argument_exception", reason: `unknown key ${String(req.headers["x-api-key"])}` }, status: 400 }),
    }));
    cleanups.push(() => rx.close());
    for (const [secret, options] of [
      ["k3y-top-0123456789", { node: `http://127.0.0.1:${rx.port}`, headers: { "x-api-key": "k3y-top-0123456789" } }],
      ["k3y-node-0123456789", { node: { url: new URL(`http://127.0.0.1:${rx.port}`), headers: { "x-api-key": "k3y-node-0123456789" } } }],
    ] as const) {
      const sink = new ElasticsearchSink({ name: "es", index: "logs", verifyOnOpen: false, requestTimeoutMs: 5_000, ...options });
      cleanups.push(() => sink.close());
      const result = await sink.send(createBatch([{ message: "over a gateway" }]), { signal: signal() });
      expect(deepText(result)).toContain("unknown key [redacted]");
      expect(deepText(result)).not.toContain(secret);
    }
    expect(rx.requests.length).toBe(2);
  });

  it("a sink's coded outcome error (ERR_SINK_AUTH on a 401) reaches the host in an event", async () => {
    const rx = await HttpReceiver.start(() => ({ status: 401, body: "" }));
    cleanups.push(() => rx.close());
    const agg = new Aggregator({ batch: { maxWaitMs: 5 } }).addSink(new LogstashSink({ name: "ls", url: `http://127.0.0.1:${rx.port}` }));
    const codes: Array<string | undefined> = [];
    agg.on("sink:error", (e) => codes.push(e.error.code));
    agg.on("drop", (e) => codes.push((e.error as { code?: string } | undefined)?.code));
    cleanups.push(() => agg.stop({ timeoutMs: 10_000 }));
    await agg.start();
    await agg.write({ message: "refused" });
    // Refused credentials are retried (they get fixed without a restart), not dropped: the record stays pending.
    await waitFor(() => codes.includes("ERR_SINK_AUTH"), { timeout: 10_000, message: "no ERR_SINK_AUTH reached the host" });
    const report = await agg.stop({ timeoutMs: 200 });
    expect(report.sinks.ls).toMatchObject({ dropped: {}, delivered: 0, pending: 1 });
  });

  it("an ElasticsearchSink whose credentials are refused on open() throws ERR_SINK_AUTH without them", async () => {
    const password = "openPw-a1b2c3d4";
    const rx = await HttpReceiver.start(() => ({ status: 401, headers: { "content-type": "application/json" }, body: '{"error":"nope"}' }));
    cleanups.push(() => rx.close());
    const sink = new ElasticsearchSink({ name: "es", node: `http://elastic:${password}@127.0.0.1:${rx.port}`, index: "logs" });
    cleanups.push(() => sink.close());
    const error = await sink.open({ signal: signal() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "ERR_SINK_AUTH", statusCode: 401 });
    expect(rx.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from(`elastic:${password}`).toString("base64")}`);
    const text = deepText(error) + inspect(error, { depth: 10, showHidden: true });
    expect(text).not.toContain(password);
    expect(text).not.toContain(Buffer.from(`elastic:${password}`).toString("base64"));
  });
});

// ── file modes ────────────────────────────────────────────────────────────────────────────────────────────────

describe("file modes", () => {
  it("checkpoint files (0600, directory 0700), FileSink and dead-letter files (0600), even under umask 0", async () => {
    const dir = mkdtempSync(join(root, "modes-"));
    writeFileSync(join(dir, "app.log"), "one\ntwo\n");
    const checkpointDir = join(dir, "checkpoints");
    const out = join(dir, "out", "archive.ndjson");
    const dlq = join(dir, "dlq", "dead.ndjson");
    // The collector inherits the host's umask: with 0, only explicit modes keep files private.
    const previous = process.umask(0);
    try {
      const archive = new FileSink({ name: "archive", path: out, rotate: { maxBytes: 300, maxFiles: 3 } });
      const rejecting = new MemorySink({ name: "rejecting", rejectWhen: () => true });
      const agg = new Aggregator({ checkpointDir, batch: { maxWaitMs: 5, maxRecords: 1 } })
        .addSource(new FileSource({ name: "app", paths: [join(dir, "app.log")], pollIntervalMs: 20 }))
        .addSink(archive)
        .addSink(rejecting, { deadLetter: "dlq" })
        .addSink(new FileSink({ name: "dlq", path: dlq }));
      cleanups.push(() => agg.stop({ timeoutMs: 10_000 }));
      await agg.start();
      const checkpoint = join(checkpointDir, "app.json");
      await waitFor(
        () => {
          const cp = JSON.parse(readFileSync(checkpoint, "utf8")) as { files: Array<{ offset: number }> };
          return cp.files[0]?.offset === 8;
        },
        { timeout: 30_000, message: "the checkpoint at the end of app.log" },
      );
      await agg.stop({ timeoutMs: 10_000 });
      const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);
      expect(mode(checkpoint)).toBe("600");
      expect(mode(checkpointDir)).toBe("700");
      expect(mode(out)).toBe("600");
      expect(mode(`${out}.1`)).toBe("600"); // two records of ~200 bytes against 300: it rotated once
      expect(mode(dlq)).toBe("600");
      expect(mode(join(dir, "out"))).toBe("700");
      expect(readFileSync(dlq, "utf8").trimEnd().split("\n")).toHaveLength(2);
    } finally {
      process.umask(previous);
    }
  });
});
