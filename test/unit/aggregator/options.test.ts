// Bad options are coded errors thrown synchronously by the call that received them.
import { describe, expect, it } from "vitest";
import { Aggregator, AggregatorError, MemorySink, type Sink } from "../../../src/index.js";
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
});
