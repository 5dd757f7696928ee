// Every example runs as a test, so the examples never rot (and `npm start` stays green).
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";
import { FakeElasticsearch } from "../helpers/fake-elasticsearch.js";
import { GelfUdpReceiver } from "../helpers/receivers/gelf-udp.js";
import { StreamReceiver } from "../helpers/receivers/stream.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const scratch = mkdtempSync(join(tmpdir(), "cla-examples-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(file: string, env: Record<string, string>, started?: (child: ChildProcess, out: () => string) => void): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", tsx, file], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (out += d));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, out }));
    started?.(child, () => out);
  });
}

describe("examples", () => {
  it("quickstart (npm start) runs, restarts the crashing service, and prints a report whose numbers add up", async () => {
    const { code, out } = await run("examples/quickstart.ts", { QUICKSTART_DURATION_MS: "5000", QUICKSTART_DIR: scratch });
    expect(code, out).toBe(0);
    expect(out).toContain("Delivery report");
    expect(out).toMatch(/restarted \(#1/);
    const totals = JSON.parse(/totals: (\{.*\})/.exec(out)![1]!) as Record<string, number>;
    expect(totals.pending).toBe(0);
    expect(totals.dropped).toBe(0);
    expect(totals.received).toBeGreaterThan(1000);
    expect(totals.delivered).toBe(totals.received);
    // the file sink holds every record, one JSON object per line
    const lines = readFileSync(join(scratch, "quickstart.ndjson"), "utf8").trim().split("\n");
    expect(lines.length).toBeGreaterThan(1000);
    for (const l of lines.slice(0, 50)) expect(JSON.parse(l)).toHaveProperty("@timestamp");
  });

  it("elasticsearch.ts ships 100 documents to a bulk-API receiver, in daily indices with deterministic ids", async () => {
    const es = await FakeElasticsearch.start();
    try {
      const { code, out } = await run("examples/elasticsearch.ts", { ES_URL: es.url, EXAMPLE_DIR: scratch });
      expect(code, out).toBe(0);
      expect(es.documentCount).toBe(100);
      expect(new Set(es.stored.map((o) => o.meta._index))).toEqual(new Set(["logs-example-2026.11.28"]));
      expect(es.stored.every((o) => typeof o.meta._id === "string" && o.op === "create")).toBe(true);
    } finally {
      await es.close();
    }
  });

  it("logstash.ts ships 100 json_lines over TCP", async () => {
    const rx = await StreamReceiver.start({ delimiter: "\n" });
    try {
      const { code, out } = await run("examples/logstash.ts", { LOGSTASH_URL: `tcp://127.0.0.1:${rx.port}` });
      expect(code, out).toBe(0);
      expect(rx.frames.map((f) => (JSON.parse(f) as { amount: number }).amount)).toEqual(Array.from({ length: 100 }, (_, i) => i * 3));
    } finally {
      await rx.close();
    }
  });

  it("gelf.ts ships 100 GELF messages over UDP, multi-line ones with full_message", async () => {
    const rx = await GelfUdpReceiver.start();
    try {
      const { code, out } = await run("examples/gelf.ts", { GELF_URL: `udp://127.0.0.1:${rx.port}` });
      expect(code, out).toBe(0);
      await waitFor(() => rx.messages.length === 100, { message: () => `100 GELF messages, got ${rx.messages.length}` });
      const failed = rx.messages.filter((m) => m.message.level === 3);
      expect(failed).toHaveLength(10);
      expect(failed[0]!.message).toMatchObject({ short_message: "job 0 failed", _job_queue: "emails" });
      expect(String(failed[0]!.message.full_message)).toContain("at runJob");
    } finally {
      await rx.close();
    }
  });

  it("syslog-server.ts takes syslog over UDP and octet-counted TCP into Elasticsearch, and reports on SIGTERM", async () => {
    const es = await FakeElasticsearch.start();
    try {
      const { code, out } = await run("examples/syslog-server.ts", { ES_URL: es.url, SYSLOG_PORT: "0", QUEUE_DIR: join(scratch, "syslog-queue") }, (child, output) => {
        void (async () => {
          await waitFor(() => /listening: udp:\/\/\S+ tcp:\/\/\S+/.test(output()), { timeout: 30_000, message: () => `the listening line, got: ${output()}` });
          const [udpPort, tcpPort] = [...output().matchAll(/:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
          const udp = createSocket("udp4");
          await new Promise<void>((resolve, reject) => udp.send("<14>1 2026-11-28T12:00:00Z web-1 api 10 - - over udp", udpPort!, "127.0.0.1", (e) => (e ? reject(e) : resolve())));
          udp.close();
          const message = "<11>1 2026-11-28T12:00:01Z web-2 api 11 - - over tcp";
          const tcp = connect(tcpPort!, "127.0.0.1");
          tcp.end(`${Buffer.byteLength(message)} ${message}`);
          await waitFor(() => es.stored.length === 2, { timeout: 15_000, message: () => `2 documents, got ${es.stored.length}: ${output()}` });
          child.kill("SIGTERM");
        })().catch((error: unknown) => {
          child.kill("SIGKILL");
          throw error;
        });
      });
      expect(code, out).toBe(0);
      expect(out).toMatch(/report: .*"delivered":2/);
      const docs = es.stored.map((o) => o.doc as { message: string; host: { name: string }; log: { level: string } });
      expect(docs.map((d) => [d.message, d.host.name, d.log.level]).sort()).toEqual([["over tcp", "web-2", "error"], ["over udp", "web-1", "info"]]);
      expect(new Set(es.stored.map((o) => o.index))).toEqual(new Set(["logs-syslog-default"]));
      // Its disk queue sent everything and kept nothing: no segment, position or lock left.
      expect(readdirSync(join(scratch, "syslog-queue", "es"))).toEqual([]);
    } finally {
      await es.close();
    }
  });

  const needsServer = new Set(["quickstart.ts", "elasticsearch.ts", "logstash.ts", "gelf.ts", "syslog-server.ts"]);
  const others = readdirSync(join(root, "examples")).filter((f) => f.endsWith(".ts") && !needsServer.has(f));
  it.each(others)("%s runs to completion with exit code 0", async (file) => {
    const { code, out } = await run(join("examples", file), { EXAMPLE_DIR: scratch });
    expect(code, out).toBe(0);
  });
});
