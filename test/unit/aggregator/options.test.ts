// Bad options are coded errors thrown synchronously by the call that received them.
import { describe, expect, it } from "vitest";
import {
  Aggregator, AggregatorError, CommandSource, ConsoleSink, ElasticsearchSink, FileSink, FileSource, GelfSink, LogstashSink, MemorySink, NetworkSource,
  ScriptSource, type Sink,
} from "../../../src/index.js";
import { resolveAggregatorOptions, resolveSinkOptions } from "../../../src/options.js";

const sink = (name: string): Sink => ({ name, send() {} });

type Case = [title: string, act: () => unknown, code: string, text: RegExp];

const cases: Case[] = [
  ["negative queue size", () => new Aggregator({ queue: { maxRecords: -1 } }), "ERR_INVALID_OPTION", /Expected `queue.maxRecords` to be a positive integer, got `-1` \(number\)/],
  ["fractional batch bytes", () => new Aggregator({ batch: { maxBytes: 1.5 } }), "ERR_INVALID_OPTION", /`batch.maxBytes`.*`1.5`/],
  ["negative maxWaitMs", () => new Aggregator({ batch: { maxWaitMs: -5 } }), "ERR_INVALID_OPTION", /`batch.maxWaitMs` to be a non-negative integer/],
  ["unknown whenFull", () => new Aggregator({ queue: { whenFull: "dropAll" as never } }), "ERR_INVALID_OPTION", /one of "block", "dropNewest", "dropOldest", got `"dropAll"`/],
  ["retry cap below base", () => new Aggregator({ retry: { baseDelayMs: 1000, maxDelayMs: 10 } }), "ERR_INVALID_OPTION", /maxDelayMs/],
  ["maxAttempts zero", () => new Aggregator({ retry: { maxAttempts: 0 } }), "ERR_INVALID_OPTION", /maxAttempts/],
  ["options not an object", () => new Aggregator(42 as never), "ERR_INVALID_OPTION", /Expected `options` to be an object, got `42`/],
  ["duplicate sink names", () => new Aggregator().addSink(sink("x")).addSink(sink("x")), "ERR_DUPLICATE_NAME", /"x" already exists/],
  ["non-function filter", () => new Aggregator().addSink(sink("x"), { filter: "level:error" as never }), "ERR_INVALID_OPTION", /Expected `filter` to be a function, got `"level:error"` \(string\)/],
  ["sink without send", () => new Aggregator().addSink({ name: "x" } as never), "ERR_INVALID_OPTION", /Expected a sink/],
  ["bad sink name", () => new Aggregator().addSink(sink("has space")), "ERR_INVALID_OPTION", /sink.name/],
  ["own dead letter", () => new Aggregator().addSink(sink("x"), { deadLetter: "x" }), "ERR_INVALID_OPTION", /own dead-letter/],
  ["batch larger than queue", () => new Aggregator().addSink(sink("x"), { queue: { maxRecords: 10 }, batch: { maxRecords: 20 } }), "ERR_INVALID_OPTION", /batch.maxRecords/],
  ["zero concurrency", () => new Aggregator().addSink(sink("x"), { concurrency: 0 }), "ERR_INVALID_OPTION", /concurrency/],
  ["unknown concurrency word", () => new Aggregator().addSink(sink("x"), { concurrency: "auto" as never }), "ERR_INVALID_OPTION", /Expected `concurrency` to be a positive integer or "adaptive", got `"auto"` \(string\)/],
  ["zero maxConcurrency", () => new Aggregator().addSink(sink("x"), { concurrency: "adaptive", maxConcurrency: 0 }), "ERR_INVALID_OPTION", /`maxConcurrency` to be a positive integer/],
  ["maxConcurrency without adaptive", () => new Aggregator().addSink(sink("x"), { concurrency: 4, maxConcurrency: 8 }), "ERR_INVALID_OPTION", /`maxConcurrency` applies to `concurrency: "adaptive"` only/],
  ["not a source", () => new Aggregator().addSource({} as never), "ERR_INVALID_OPTION", /Expected a source/],
  ["misspelled regex parser key", () => new FileSource({ name: "f", paths: ["/tmp/x.log"], parser: { regex: "(?<message>.*)", flag: "i" } as never }), "ERR_INVALID_OPTION", /Unknown option `parser.flag` \(did you mean `flags`\?\)/],
  ["misspelled syslog option", () => new FileSource({ name: "f", paths: ["/tmp/x.log"], parser: { syslog: { timeZone: "UTC" } } as never }), "ERR_INVALID_OPTION", /Unknown option `parser.syslog.timeZone` \(did you mean `timezone`\?\)/],
  ["misspelled multiline key", () => new FileSource({ name: "f", paths: ["/tmp/x.log"], multiline: { startPattern: "^\\S", maxline: 5 } as never }), "ERR_INVALID_OPTION", /Unknown option `multiline.maxline` \(did you mean `maxLines`\?\)/],
  ["unknown key beside a multiline preset", () => new FileSource({ name: "f", paths: ["/tmp/x.log"], multiline: { preset: "java", negate: true } as never }), "ERR_INVALID_OPTION", /Unknown option `multiline.negate`/],
  ["a command env value that is not a string", () => new CommandSource({ name: "c", command: "true", env: { A: 5 as never } }), "ERR_INVALID_OPTION", /Expected `env.A` to be a string, got `5` \(number\)/],
  ["a NUL byte in a command argument", () => new CommandSource({ name: "c", command: "echo", args: ["a\0b"] }), "ERR_INVALID_OPTION", /`args\[0\]` to hold no NUL byte/],
  ["a command cwd that is not a path", () => new CommandSource({ name: "c", command: "true", cwd: 5 as never }), "ERR_INVALID_OPTION", /Expected `cwd` to be a directory path/],
  ["inheritEnv that is not a boolean", () => new CommandSource({ name: "c", command: "true", inheritEnv: 0 as never }), "ERR_INVALID_OPTION", /Expected `inheritEnv` to be a boolean/],
  ["unknown container format", () => new FileSource({ name: "f", paths: ["/tmp/x.log"], container: "k8s" as never }), "ERR_INVALID_OPTION", /Expected `container` to be "cri", "docker" or "auto", got `"k8s"` \(string\)/],
  ["multiline timer past Node's longest", () => new FileSource({ name: "f", paths: ["/tmp/x.log"], multiline: { startPattern: "^\\S", timeoutMs: 2 ** 31 } }), "ERR_INVALID_OPTION", /`multiline.timeoutMs` to be at most 2147483647 ms/],
];

describe("option validation", () => {
  it.each(cases)("%s", (_title, act, code, text) => {
    let thrown: unknown;
    try {
      act();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(AggregatorError);
    expect((thrown as AggregatorError).code).toBe(code);
    expect((thrown as Error).message).toMatch(text);
  });

  it("an unknown dead-letter sink fails start(), before anything runs", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator().addSink(m, { deadLetter: "nope" });
    await expect(agg.start()).rejects.toMatchObject({ code: "ERR_UNKNOWN_SINK" });
    expect(m.opens).toBe(0);
  });

  it("an unknown dead-letter sink fails addSink() once running", async () => {
    const agg = new Aggregator().addSink(new MemorySink({ name: "m" }));
    await agg.start();
    expect(() => agg.addSink(sink("x"), { deadLetter: "nope" })).toThrow(expect.objectContaining({ code: "ERR_UNKNOWN_SINK" }));
    await agg.stop();
  });

  it("accepts 0 where 0 makes sense (?? not ||)", () => {
    const agg = new Aggregator({ batch: { maxWaitMs: 0 }, retry: { baseDelayMs: 0, maxDelayMs: 0 } });
    expect(agg.state).toBe("idle");
  });

  it("batch: a sink's own suggestion stands in for the library's defaults, not for what the user set on the Aggregator", () => {
    const suggested = { batch: { maxBytes: 5 * 1024 * 1024, maxRecords: 500 } };
    const batch = (aggregator: object | undefined, sink: object | undefined) =>
      resolveSinkOptions(sink, resolveAggregatorOptions(aggregator), suggested).batch;
    // Nothing set: the suggestion over the library's defaults.
    expect(batch(undefined, undefined)).toEqual({ maxBytes: 5 * 1024 * 1024, maxRecords: 500, maxWaitMs: 1_000 });
    // Set on the Aggregator for every sink: wins over the suggestion (before, the suggestion won: a 20 KB limit gave
    // one 264 KB Elasticsearch bulk body).
    expect(batch({ batch: { maxBytes: 20_000 } }, undefined)).toEqual({ maxBytes: 20_000, maxRecords: 500, maxWaitMs: 1_000 });
    expect(batch({ batch: { maxRecords: 50, maxWaitMs: 5 } }, undefined)).toEqual({ maxBytes: 5 * 1024 * 1024, maxRecords: 50, maxWaitMs: 5 });
    // Set on the sink: wins over both.
    expect(batch({ batch: { maxBytes: 20_000 } }, { batch: { maxBytes: 1_000 } })).toEqual({ maxBytes: 1_000, maxRecords: 500, maxWaitMs: 1_000 });
  });

  // A misspelled option must not be ignored: a misspelled checkpointDir turned persistence off without a word.
  it.each<[string, () => unknown, RegExp]>([
    ["Aggregator", () => new Aggregator({ checkpointdir: "./cp" } as never), /Unknown option `checkpointdir` \(did you mean `checkpointDir`\?\)/],
    ["Aggregator queue", () => new Aggregator({ queue: { maxRecord: 5 } } as never), /`queue.maxRecord` \(did you mean `maxRecords`\?\)/],
    ["Aggregator queue.disk", () => new Aggregator({ queue: { disk: { dir: "/tmp/x", fsnyc: false } } } as never), /`queue.disk.fsnyc` \(did you mean `fsync`\?\)/],
    ["Aggregator batch", () => new Aggregator({ batchs: {} } as never), /`batchs` \(did you mean `batch`\?\)/],
    ["Aggregator retry", () => new Aggregator({ retry: { maxAttempt: 3 } } as never), /`retry.maxAttempt`/],
    ["Aggregator credit", () => new Aggregator({ credit: { record: 5 } } as never), /`credit.record`/],
    ["addSink options", () => new Aggregator().addSink(sink("x"), { deadletter: "y" } as never), /`deadletter` \(did you mean `deadLetter`\?\)/],
    ["addSource options", () => new Aggregator().addSource(new CommandSource({ name: "c", command: "true" }), { sink: ["x"] } as never), /`sink` \(did you mean `sinks`\?\)/],
    ["CommandSource", () => new CommandSource({ name: "c", command: "true", restarts: {} } as never), /`restarts` \(did you mean `restart`\?\)/],
    ["CommandSource restart", () => new CommandSource({ name: "c", command: "true", restart: { maxRestart: 1 } } as never), /`restart.maxRestart`/],
    ["FileSource", () => new FileSource({ name: "f", paths: ["/tmp/x.log"], startat: "end" } as never), /`startat` \(did you mean `startAt`\?\)/],
    ["ScriptSource", () => new ScriptSource({ name: "s", module: "/tmp/x.mjs", option: {} } as never), /`option` \(did you mean `options`\?\)/],
    ["NetworkSource", () => new NetworkSource({ name: "n", listen: "tcp://127.0.0.1:0", maxConnection: 5 } as never), /`maxConnection`/],
    ["NetworkSource http", () => new NetworkSource({ name: "n", listen: "http://127.0.0.1:0", http: { maxBodySize: 5 } } as never), /`http.maxBodySize`/],
    ["MemorySink", () => new MemorySink({ name: "m", kep: 5 } as never), /`kep` \(did you mean `keep`\?\)/],
    ["FileSink", () => new FileSink({ name: "f", path: "/tmp/x", fsnyc: "batch" } as never), /`fsnyc` \(did you mean `fsync`\?\)/],
    ["ConsoleSink", () => new ConsoleSink({ name: "c", colour: true } as never), /`colour`/],
    ["LogstashSink", () => new LogstashSink({ name: "l", url: "tcp://127.0.0.1:5000", reconect: {} } as never), /`reconect` \(did you mean `reconnect`\?\)/],
    ["GelfSink", () => new GelfSink({ name: "g", url: "udp://127.0.0.1:12201", chunksize: 1000 } as never), /`chunksize` \(did you mean `chunkSize`\?\)/],
    ["ElasticsearchSink", () => new ElasticsearchSink({ name: "es", node: "http://127.0.0.1:9200", requestTimeOutMs: 5 } as never), /`requestTimeOutMs` \(did you mean `requestTimeoutMs`\?\)/],
    ["ElasticsearchSink client option", () => new ElasticsearchSink({ name: "es", node: "http://127.0.0.1:9200", compresion: true } as never), /`compresion` \(did you mean `compression`\?\)/],
    ["ElasticsearchSink maxRetries", () => new ElasticsearchSink({ name: "es", node: "http://127.0.0.1:9200", maxRetries: 3 } as never), /`maxRetries` for ElasticsearchSink: the sink sends with maxRetries: 0/],
    ["ElasticsearchSink requestTimeout", () => new ElasticsearchSink({ name: "es", node: "http://127.0.0.1:9200", requestTimeout: 3 } as never), /`requestTimeout` for ElasticsearchSink: use `requestTimeoutMs`/],
    ["stop()", () => new Aggregator().stop({ timeout: 5 } as never), /`timeout` \(did you mean `timeoutMs`\?\)/],
  ])("an unknown option is refused with ERR_INVALID_OPTION: %s", async (_what, act, text) => {
    let thrown: unknown;
    try {
      await act();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toMatchObject({ code: "ERR_INVALID_OPTION" });
    expect((thrown as Error).message).toMatch(text);
  });

  it("waitFor and waitForCount take timeoutMs (and the older timeout), and refuse a misspelled option", async () => {
    const { waitFor } = await import("../../../src/testing/wait-for.js");
    await expect(waitFor(() => false, { timeoutMs: 30, intervalMs: 5, message: "never" })).rejects.toThrow(/Timed out after 30 ms waiting for never/);
    await expect(waitFor(() => false, { timeout: 30, message: "never" })).rejects.toThrow(/Timed out after 30 ms/);
    expect(() => waitFor(() => true, { timeoutms: 5 } as never)).toThrow(/Unknown option `timeoutms` \(did you mean `timeoutMs`\?\)/);
    const m = new MemorySink({ name: "m" });
    await expect(m.waitForCount(1, { timeoutMs: 30 })).rejects.toThrow(/within 30 ms/);
    expect(() => m.waitForCount(1, { timout: 30 } as never)).toThrow(/Unknown option `timout`/);
  });

  it("an unknown key left undefined sets nothing and is let through (leftovers of a spread config)", () => {
    expect(() => new Aggregator({ checkpointdir: undefined } as never)).not.toThrow();
    expect(() => new MemorySink({ name: "m", kep: undefined } as never)).not.toThrow();
  });
});

