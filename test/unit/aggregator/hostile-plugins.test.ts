// Plugins (sinks, filters, listeners) that throw or hand back values with no string form (`Object.create(null)`, as
// `querystring.parse()` returns; an Error whose `message` getter throws), or that are async where the engine expects
// a plain answer. Each failure must be visible (an event, the report) and must strand nothing.
import { spawnSync } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Aggregator, MemorySink, Outcome, type AggregatorError, type Sink } from "../../../src/index.js";
import { ScriptedSink, numbered } from "../../helpers/sinks.js";

/** A value with no primitive form: `String()` and template literals throw on it. */
const noText = (): object => Object.assign(Object.create(null) as object, { status: "400" });
/** A revoked Proxy: every operation on it throws, `Array.isArray` included. */
const revoked = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};
/** An Error whose message cannot be read. */
const unreadable = (): Error => {
  const e = new Error("x");
  Object.defineProperty(e, "message", {
    get() {
      throw new Error("no message for you");
    },
  });
  return e;
};

describe("values with no string form", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it.each([
    ["a thrown null-prototype object", () => Promise.reject(noText())],
    ["an Error whose message getter throws", () => Promise.reject(unreadable())],
    ["a per-record retry carrying a null-prototype error", () => Outcome.perRecord([Outcome.retry("http_503", undefined, noText())])],
    ["a whole-batch retry carrying a null-prototype error", () => ({ status: "retry", reason: "http_503", error: noText() }) as never],
  ])("a sink failing with %s is reported and retried; nothing is stranded", async (_title, fail) => {
    const sink = new ScriptedSink("s", (_b, call) => (call === 0 ? fail() : undefined));
    const errors: AggregatorError[] = [];
    const agg = new Aggregator().addSink(sink, { batch: { maxRecords: 1, maxWaitMs: 0 }, retry: { baseDelayMs: 10 } });
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    await agg.write(numbered(1));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sink.calls).toHaveLength(2);
    const report = await agg.stop();
    expect(report.sinks.s).toMatchObject({ received: 1, delivered: 1, pending: 0 });
    expect(report.timedOut).toBe(false);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(typeof errors[0]!.message).toBe("string");
  });

  it("a per-record rejection carrying a null-prototype error dead-letters the record", async () => {
    const sink = new ScriptedSink("s", () => Outcome.perRecord([Outcome.reject("http_400", noText())]));
    const dlq = new MemorySink({ name: "dlq" });
    const agg = new Aggregator().addSink(sink, { deadLetter: "dlq", batch: { maxWaitMs: 0 } }).addSink(dlq, { batch: { maxWaitMs: 0 } });
    await agg.start();
    await agg.write(numbered(1));
    await vi.advanceTimersByTimeAsync(100);
    const report = await agg.stop();
    expect(report.sinks.s).toMatchObject({ received: 1, deadLettered: 1, pending: 0 });
    expect(dlq.records.map((r) => r.n)).toEqual([0]);
  });

  it("a filter that throws a null-prototype object leaves the record out of that sink only, and the source keeps flowing", async () => {
    const filtered = new MemorySink({ name: "filtered" });
    const other = new MemorySink({ name: "other" });
    const errors: AggregatorError[] = [];
    const agg = new Aggregator()
      .addSink(filtered, {
        batch: { maxWaitMs: 0 },
        filter: () => {
          throw noText();
        },
      })
      .addSink(other, { batch: { maxWaitMs: 0 } });
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    for (let i = 0; i < 3; i++) await agg.write(numbered(1, i));
    await vi.advanceTimersByTimeAsync(100);
    const report = await agg.stop();
    expect(other.records.map((r) => r.n)).toEqual([0, 1, 2]);
    expect(report.sinks.filtered).toMatchObject({ received: 0, filtered: 3 });
    expect(errors.map((e) => e.code)).toEqual(["ERR_SINK_FILTER"]);
  });

  it("a sink whose close() throws a null-prototype object, or whose close getter throws, still lets stop() report", async () => {
    const sink = (name: string, close: PropertyDescriptor): Sink => {
      const s = { name, send: () => undefined } as unknown as Sink;
      Object.defineProperty(s, "close", close);
      return s;
    };
    const errors: AggregatorError[] = [];
    const last = new MemorySink({ name: "last" });
    const agg = new Aggregator()
      .addSink(sink("a", { value: () => Promise.reject(noText()) }))
      .addSink(
        sink("b", {
          get() {
            throw noText();
          },
        }),
      )
      .addSink(last);
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    const report = await agg.stop();
    expect(agg.state).toBe("stopped");
    expect(Object.keys(report.sinks).sort()).toEqual(["a", "b", "last"]);
    expect(errors.map((e) => [e.sink, e.code]).sort()).toEqual([
      ["a", "ERR_SINK_CLOSE"],
      ["b", "ERR_SINK_CLOSE"],
    ]);
  });
});

describe("write() with arguments it cannot read", () => {
  it.each([
    ["a revoked Proxy as the record", () => [revoked(), undefined]],
    ["a revoked Proxy as the options", () => [{ message: "x" }, revoked()]],
    [
      "an array Proxy whose elements cannot be read",
      () => [
        new Proxy([{ message: "a" }], {
          get(t, k) {
            if (k === "length" || k === "0") throw new Error("trap");
            return Reflect.get(t, k) as unknown;
          },
        }),
        undefined,
      ],
    ],
    [
      "options whose source getter throws",
      () => [
        { message: "x" },
        {
          get source(): string {
            throw noText();
          },
        },
      ],
    ],
  ])("%s: a rejected promise and a counted refusal, never a throw", async (_title, args) => {
    const agg = new Aggregator().addSink(new MemorySink({ name: "mem" }));
    const drops: string[] = [];
    agg.on("drop", (e) => drops.push(e.reason));
    await agg.start();
    const [record, options] = args() as [never, never];
    let written: Promise<void> | undefined;
    expect(() => {
      written = agg.write(record, options);
    }).not.toThrow();
    await expect(written).rejects.toMatchObject({ code: "ERR_INVALID_OPTION" });
    expect(drops).toEqual(["writeRefused"]);
    await agg.stop();
  });
});

describe("async where the engine expects a plain answer", () => {
  it("a filter that returns a promise (an async function) is a filter error, not a silent exclusion", async () => {
    const mem = new MemorySink({ name: "mem" });
    const errors: AggregatorError[] = [];
    const agg = new Aggregator().addSink(mem, { batch: { maxWaitMs: 0 }, filter: (async () => true) as never });
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    await agg.write(numbered(2));
    const report = await agg.stop();
    expect(report.sinks.mem).toMatchObject({ received: 0, filtered: 2 });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe("ERR_SINK_FILTER");
    expect(errors[0]!.message).toMatch(/true or false synchronously, it returned a promise/);
  });

  it("an async listener that rejects is an `error` event (ERR_LISTENER), not an unhandled rejection; off() and listeners() see the function given", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator().addSink(mem, { batch: { maxWaitMs: 0 } });
    const errors: AggregatorError[] = [];
    agg.on("error", (e) => errors.push(e));
    const rejecting = async (): Promise<void> => {
      throw noText();
    };
    agg.on("delivered", rejecting);
    expect(agg.listeners("delivered")).toEqual([rejecting]);
    await agg.start();
    await agg.write(numbered(1));
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]!.code).toBe("ERR_LISTENER");
    expect(errors[0]!.message).toContain('a "delivered" listener rejected');
    agg.off("delivered", rejecting);
    expect(agg.listenerCount("delivered")).toBe(0);
    const report = await agg.stop();
    expect(report.sinks.mem).toMatchObject({ delivered: 1 });
  });
});

describe("a host with nothing else to do", () => {
  it("waits for a sink's open() until openTimeoutMs instead of exiting with start() unsettled", () => {
    const entry = new URL("../../../dist/index.js", import.meta.url).href;
    const script = `
      const { Aggregator } = await import(${JSON.stringify(entry)});
      const agg = new Aggregator().addSink({ name: "s", open: () => new Promise(() => {}), send: () => undefined }, { openTimeoutMs: 200 });
      agg.start().then(() => console.log("started"), (e) => console.log("start rejected " + e.code));
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
    expect(r.stdout.trim()).toBe("start rejected ERR_SINK_OPEN");
    expect(r.status).toBe(0);
  });
});

describe("one sink instance, two aggregators", () => {
  it("addSink() refuses a sink another running aggregator has (ERR_INVALID_STATE); after that one's stop() it may be added", async () => {
    const shared = new MemorySink({ name: "shared" });
    const a = new Aggregator().addSink(shared);
    await a.start();
    expect(() => new Aggregator().addSink(shared)).toThrow(expect.objectContaining({ code: "ERR_INVALID_STATE" }));
    await a.stop();
    const b = new Aggregator().addSink(shared);
    await b.start();
    await b.write({ message: "after" });
    await b.stop();
    expect(shared.messages()).toEqual(["after"]);
  });

  it("added to two idle aggregators, the sink goes with the first to start: the other's start() is refused", async () => {
    const shared = new MemorySink({ name: "shared" });
    const x = new Aggregator().addSink(shared);
    const y = new Aggregator().addSink(shared);
    await x.start();
    await expect(y.start()).rejects.toMatchObject({ code: "ERR_INVALID_STATE", message: expect.stringContaining('sink "shared"') });
    expect(y.state).toBe("idle");
    await x.write({ message: "x" });
    await x.stop();
    // Once x stopped, y may have it.
    await y.start();
    await y.write({ message: "y" });
    await y.stop();
    expect(shared.messages()).toEqual(["x", "y"]);
  });

  it("addSink() turns a sink getter that throws into ERR_INVALID_OPTION", () => {
    const sink = {
      name: "s",
      send: () => undefined,
      get pipelineDefaults(): never {
        throw new Error("boom");
      },
    };
    expect(() => new Aggregator().addSink(sink)).toThrow(expect.objectContaining({ code: "ERR_INVALID_OPTION", message: expect.stringContaining("boom") }));
    expect(() => new Aggregator().addSink({ name: "t", send: () => undefined, pipelineDefaults: { concurrency: "x" as never } })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_OPTION", message: expect.stringContaining("sink.pipelineDefaults.concurrency") }),
    );
  });
});

describe("a custom sink's metrics", () => {
  it("keep only finite numbers, so that metrics() stays JSON and prometheus() valid", async () => {
    const sink: Sink = {
      name: "odd",
      send: () => undefined,
      metrics: () => ({ requests: 3, big: 10n, text: "7", nan: Number.NaN, inf: Number.POSITIVE_INFINITY, nested: { a: 1 } }) as never,
    };
    const agg = new Aggregator().addSink(sink);
    await agg.start();
    const m = agg.metrics();
    expect(m.sinks.odd!.transport).toEqual({ requests: 3 });
    expect(() => JSON.stringify(m)).not.toThrow();
    expect(agg.prometheus()).toContain("requests");
    await agg.stop();
  });
});
