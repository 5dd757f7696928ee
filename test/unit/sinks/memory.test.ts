// MemorySink is the engine's test double: its storage, waits and every injected fault must behave exactly as documented.
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemorySink } from "../../../src/sinks/memory.js";
import { createBatch } from "../../../src/testing/create-batch.js";
import { WaitForTimeoutError } from "../../../src/testing/wait-for.js";
import { InvalidOptionError, SinkError } from "../../../src/errors.js";
import type { RecordOutcome, SendResult } from "../../../src/sinks/sink.js";
import { rejectionOf } from "../../helpers/rejection.js";

const ctx = () => ({ signal: new AbortController().signal });
const msgs = (...m: string[]) => createBatch(m.map((message) => ({ message, "@timestamp": "2024-05-01T10:00:00.000Z" })));


afterEach(() => {
  vi.useRealTimers();
});


/** A send aborted by a "stop deadline" signal: a retryable ERR_SINK_SEND naming the reason; nothing stored, counted. */
function expectAbortedSend(error: SinkError, sink: MemorySink): void {
  expect(error).toBeInstanceOf(SinkError);
  expect(error.code).toBe("ERR_SINK_SEND");
  expect(error.message).toContain("send aborted (stop deadline)");
  expect(error.retryable).toBe(true);
  expect(sink.count).toBe(0);
  expect(sink.abortedSends).toBe(1);
}
describe("MemorySink storage", () => {
  it("keeps records in delivery order, as records, JSON lines and messages", async () => {
    const sink = new MemorySink({ name: "mem" });
    expect(await sink.send(msgs("a", "b"), ctx())).toEqual({ status: "delivered" });
    await sink.send(msgs("c"), ctx());
    expect(sink.count).toBe(3);
    expect(sink.messages()).toEqual(["a", "b", "c"]);
    expect(sink.records.map((r) => r.message)).toEqual(["a", "b", "c"]);
    expect(sink.json[0]).toBe(JSON.stringify({ message: "a", "@timestamp": "2024-05-01T10:00:00.000Z" }));
    expect(sink.find((r) => r.message === "b")).toMatchObject({ message: "b" });
    expect(sink.find((r) => r.message === "z")).toBeUndefined();
  });

  it("returns records independent of the producer's objects", async () => {
    const input = { message: "original", "@timestamp": "2024-05-01T10:00:00.000Z", log: { level: "info" as const } };
    const sink = new MemorySink({ name: "mem" });
    await sink.send(createBatch([input]), ctx());
    input.message = "mutated after send";
    expect(sink.records[0]!.message).toBe("original");
  });

  it("clear() forgets held records but not the counters", async () => {
    const sink = new MemorySink({ name: "mem" });
    await sink.send(msgs("a", "b"), ctx());
    expect(sink.records).toHaveLength(2);
    sink.clear();
    expect(sink.count).toBe(0);
    expect(sink.records).toHaveLength(0);
    await sink.send(msgs("c"), ctx());
    expect(sink.messages()).toEqual(["c"]);
    expect(sink.delivered).toBe(3);
    expect(sink.sends).toBe(2);
    expect(sink.metrics()).toMatchObject({ sends: 2, records: 3, held_records: 1 });
  });

  it("holds a million records as their JSON lines (parsing is deferred to the first read of `records`)", async () => {
    const json = Array.from({ length: 1000 }, (_, i) => `{"@timestamp":"2024-05-01T10:00:00.000Z","message":"m${i}"}`);
    const batch = { length: 1000, json, records: [], sources: [], bytes: 1000 * 55, attempt: 1 } as never;
    const sink = new MemorySink({ name: "mem" });
    for (let i = 0; i < 1000; i++) await sink.send(batch, ctx());
    expect(sink.count).toBe(1_000_000);
    expect(sink.json[999_999]).toBe(json[999]);
    expect(sink.metrics()).toMatchObject({ records: 1_000_000 });
  });

  it("keeps delivery order across engine batches (decoded on read) and batches judged by rules", async () => {
    const sink = new MemorySink({ name: "mem" });
    await sink.send(msgs("a", "b"), ctx());
    expect(sink.count).toBe(2);
    sink.rejectWhen((r) => r.message === "x");
    await sink.send(msgs("c", "x", "d"), ctx());
    sink.clearFaults();
    await sink.send(msgs("e"), ctx());
    await sink.send({ length: 1, json: ['{"message":"f"}'], records: [], sources: [undefined], bytes: 15, attempt: 1 } as never, ctx());
    await sink.send(msgs("g"), ctx());
    expect(sink.count).toBe(7);
    expect(sink.metrics()).toMatchObject({ records: 7, held_records: 7, rejected_records: 1 });
    expect(sink.messages()).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
    expect(sink.json[5]).toBe('{"message":"f"}');
  });

  it("counts bytes and records in metrics()", async () => {
    const sink = new MemorySink({ name: "mem" });
    const batch = msgs("a", "bb");
    await sink.send(batch, ctx());
    expect(sink.metrics()).toMatchObject({ sends: 1, records: 2, bytes: batch.bytes });
  });
});

describe("MemorySink in an Aggregator with default batching", () => {
  it("has a write()'s records once it resolves, so that a test sees what was (or was not) logged", async () => {
    const { Aggregator } = await import("../../../src/aggregator.js");
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator().addSink(m);
    await agg.start();
    await agg.write({ message: "unexpected warning", log: { level: "warn" } });
    expect(m.messages()).toEqual(["unexpected warning"]);
    // The user's batching wins over the sink's suggestion.
    const slow = new MemorySink({ name: "slow" });
    const held = new Aggregator({ batch: { maxWaitMs: 60_000 } }).addSink(slow);
    await held.start();
    await held.write({ message: "later" });
    expect(slow.count).toBe(0);
    expect(new MemorySink({ name: "x", pipelineDefaults: { concurrency: 2 } }).pipelineDefaults).toEqual({ concurrency: 2, batch: { maxWaitMs: 0 } });
    await Promise.all([agg.stop(), held.stop()]);
    expect(slow.messages()).toEqual(["later"]);
  });
});

describe("MemorySink under fake timers that replace queueMicrotask too", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("still has a write()'s records once it resolves (the engine's microtasks are promise jobs)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "setInterval", "Date", "queueMicrotask"] });
    const { Aggregator } = await import("../../../src/aggregator.js");
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator().addSink(m);
    await agg.start();
    await agg.write([{ message: "one" }, { message: "two" }]);
    expect(m.messages()).toEqual(["one", "two"]);
    const stopping = agg.stop();
    await vi.advanceTimersByTimeAsync(100);
    await stopping;
  });
});

describe("MemorySink keep", () => {
  const plain = (...m: string[]) =>
    ({ length: m.length, json: m.map((message) => JSON.stringify({ message })), records: [], sources: m.map(() => undefined), bytes: 0, attempt: 1 }) as never;

  it("holds the latest `keep` records across engine batches, plain batches and earlier reads; counters count all", async () => {
    const sink = new MemorySink({ name: "mem", keep: 3 });
    await sink.send(msgs("a", "b"), ctx());
    expect(sink.records.map((r) => r.message)).toEqual(["a", "b"]); // parsed before later ones arrive
    await sink.send(msgs("c", "d", "e"), ctx()); // an engine batch: the first of it is let go
    expect(sink.count).toBe(3);
    expect(sink.messages()).toEqual(["c", "d", "e"]);
    expect(sink.records[0]!.message).toBe("c");
    await sink.send(plain("f"), ctx());
    await sink.send(msgs("g", "h"), ctx());
    expect(sink.json).toEqual(["f", "g", "h"].map((message) => JSON.stringify(message === "f" ? { message } : { message, "@timestamp": "2024-05-01T10:00:00.000Z" })));
    expect(sink.find((r) => r.message === "e")).toBeUndefined();
    expect(sink.delivered).toBe(8);
    expect(sink.metrics()).toMatchObject({ records: 8, held_records: 3 });
  });

  it("lets go inside an engine batch that is still undecoded", async () => {
    const sink = new MemorySink({ name: "mem", keep: 5 });
    await sink.send(msgs("a", "b", "c"), ctx());
    await sink.send(msgs("d", "e", "f"), ctx());
    await sink.send(msgs("g"), ctx());
    expect(sink.count).toBe(5);
    expect(sink.messages()).toEqual(["c", "d", "e", "f", "g"]);
  });

  it("applies to records judged by rules", async () => {
    const sink = new MemorySink({ name: "mem", keep: 2 });
    sink.rejectWhen((r) => r.message === "x");
    await sink.send(msgs("a", "x", "b", "c"), ctx());
    expect(sink.messages()).toEqual(["b", "c"]);
    expect(sink.metrics()).toMatchObject({ records: 3, rejected_records: 1, held_records: 2 });
  });

  it("keep: 0 counts without holding or decoding anything, and refuses a waitForCount it could never satisfy", async () => {
    const sink = new MemorySink({ name: "mem", keep: 0 });
    const batch = msgs("a", "b");
    await sink.send(batch, ctx());
    sink.rejectWhen((r) => r.message === "x");
    await sink.send(msgs("x", "c"), ctx());
    expect(sink.count).toBe(0);
    expect(sink.json).toEqual([]);
    expect(sink.delivered).toBe(3);
    expect(sink.metrics()).toMatchObject({ records: 3, rejected_records: 1, held_records: 0 });
    await expect(sink.waitForCount(0)).resolves.toBeUndefined();
    expect(() => sink.waitForCount(1)).toThrow(InvalidOptionError);
    expect(() => sink.waitForCount(1)).toThrow(/holds at most 0 records/);
  });

  it("stays bounded while a million records go through, unread, as engine batches or plain ones", async () => {
    const engine = createBatch(Array.from({ length: 1000 }, (_, i) => ({ message: `m${i}`, "@timestamp": "2024-05-01T10:00:00.000Z" })));
    const json = Array.from({ length: 1000 }, (_, i) => `{"message":"p${i}"}`);
    const plainBatch = { length: 1000, json, records: [], sources: [], bytes: 1000 * 16, attempt: 1 } as never;
    for (const batch of [engine, plainBatch]) {
      const sink = new MemorySink({ name: "mem", keep: 2000 });
      const internals = sink as unknown as { lines: string[]; undecodedCount: number };
      for (let i = 0; i < 1000; i++) {
        await sink.send(batch, ctx());
        // Between reads at most keep + max(1024, keep / 2) wait, plus the batch that just came.
        expect(internals.lines.length + internals.undecodedCount).toBeLessThanOrEqual(2000 + 1024 + 1000);
      }
      expect(sink.count).toBe(2000);
      expect(sink.json).toHaveLength(2000);
      expect(sink.json[0]).toBe(batch.json[0]);
      expect(sink.json[1999]).toBe(batch.json[999]);
      expect(sink.delivered).toBe(1_000_000);
    }
  });

  it("refuses a keep that is not a non-negative integer or Infinity", () => {
    for (const keep of [-1, 1.5, "3", Number.NaN]) {
      expect(() => new MemorySink({ name: "mem", keep: keep as never })).toThrow(InvalidOptionError);
    }
    expect(new MemorySink({ name: "mem", keep: Infinity }).count).toBe(0);
  });
});

describe("MemorySink.waitForCount", () => {
  it("resolves once enough records arrived, including ones delivered later", async () => {
    const sink = new MemorySink({ name: "mem" });
    await sink.send(msgs("a"), ctx());
    await sink.waitForCount(1);
    const waiting = sink.waitForCount(3, { timeout: 5000 });
    await sink.send(msgs("b"), ctx());
    await sink.send(msgs("c", "d"), ctx());
    await expect(waiting).resolves.toBeUndefined();
  });

  it("rejects with how many arrived and what the sink did", async () => {
    const sink = new MemorySink({ name: "slow" });
    await sink.send(msgs("a", "b"), ctx());
    sink.failNext(1);
    await sink.send(msgs("c"), ctx());
    const error = await rejectionOf(sink.waitForCount(5, { timeout: 20 }));
    expect(error).toBeInstanceOf(WaitForTimeoutError);
    expect(error.message).toContain('MemorySink "slow": expected at least 5 records within 20 ms, got 2');
    expect(error.message).toContain("sends: 2, failed sends: 1");
  });

  it("counts a send whose rule predicate threw as failed, and names what it threw", async () => {
    const sink = new MemorySink({ name: "mem" }).rejectWhen((r) => (r.user as { id: string }).id === "x");
    await expect(sink.send(msgs("a"), ctx())).rejects.toThrow(/Cannot read properties of undefined/);
    expect(sink.failedSends).toBe(1);
    const error = await rejectionOf(sink.waitForCount(1, { timeoutMs: 20 }));
    expect(error.message).toContain("sends: 1, failed sends: 1");
    expect(error.message).toContain("last failed send: a rule's predicate threw TypeError: Cannot read properties of undefined (reading 'id')");
  });

  it("times out on real time under fake timers", async () => {
    vi.useFakeTimers();
    const sink = new MemorySink({ name: "mem" });
    await expect(sink.waitForCount(1, { timeout: 10 })).rejects.toThrow(/got 0/);
  });
});

describe("MemorySink fault injection", () => {
  it("failNext(n) fails n whole batches as retry, then delivers", async () => {
    const sink = new MemorySink({ name: "mem", failNext: 1 });
    sink.failNext(2, { retryAfterMs: 250, reason: "http_503" });
    const results: SendResult[] = [];
    for (let i = 0; i < 3; i++) results.push(await sink.send(msgs(`try${i}`), ctx()));
    expect(results[0]).toEqual({ status: "retry", reason: "http_503", retryAfterMs: 250, error: undefined });
    expect(results[1]).toMatchObject({ status: "retry", reason: "http_503" });
    expect(results[2]).toEqual({ status: "delivered" });
    expect(sink.messages()).toEqual(["try2"]);
    expect(sink.failedSends).toBe(2);
  });

  it("failNext from the constructor, and the throwing variant", async () => {
    const sink = new MemorySink({ name: "mem", failNext: 1 });
    expect(await sink.send(msgs("a"), ctx())).toMatchObject({ status: "retry", reason: "injected_failure" });
    sink.failNext(1, { throw: true, retryAfterMs: 10 });
    const error = await rejectionOf<SinkError>(sink.send(msgs("b"), ctx()));
    expect(error).toBeInstanceOf(SinkError);
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(10);
    expect(sink.count).toBe(0);
  });

  it("rejectWhen gives per-record outcomes with reasons and keeps only delivered records", async () => {
    const sink = new MemorySink({ name: "mem", rejectWhen: (r) => r.message === "bad-1" });
    sink.rejectWhen((r) => r.message.startsWith("bad"), "mapper_parsing_exception");
    const result = (await sink.send(msgs("ok-0", "bad-1", "ok-2", "bad-3"), ctx())) as { outcomes: RecordOutcome[] };
    expect(result.outcomes).toEqual([
      { status: "delivered" },
      { status: "rejected", reason: "rejected_by_test", error: undefined },
      { status: "delivered" },
      { status: "rejected", reason: "mapper_parsing_exception", error: undefined },
    ]);
    expect(sink.messages()).toEqual(["ok-0", "ok-2"]);
    expect(sink.rejected).toBe(2);
    expect(await sink.send(msgs("ok-4"), ctx())).toEqual({ status: "delivered" });
  });

  it("retryWhen with times lets the resend through", async () => {
    const sink = new MemorySink({ name: "mem" }).retryWhen((r) => r.message === "five", "http_429", {
      times: 1,
      retryAfterMs: 100,
    });
    const first = (await sink.send(msgs("four", "five", "six"), ctx())) as { outcomes: RecordOutcome[] };
    expect(first.outcomes.map((o) => o.status)).toEqual(["delivered", "retry", "delivered"]);
    expect(first.outcomes[1]).toMatchObject({ reason: "http_429", retryAfterMs: 100 });
    expect(await sink.send(msgs("five"), ctx())).toEqual({ status: "delivered" });
    expect(sink.messages()).toEqual(["four", "six", "five"]);
    expect(sink.retried).toBe(1);
  });

  it("waitForCount refuses a timeout longer than a Node timer can wait", () => {
    const sink = new MemorySink({ name: "mem" });
    expect(() => sink.waitForCount(1, { timeout: 3_000_000_000 })).toThrow("at most 2147483647 ms");
  });

  it("a predicate that throws partway through a batch stores nothing and uses up no rule (the resend stores each once)", async () => {
    let calls = 0;
    const sink = new MemorySink({ name: "mem" })
      .retryWhen((r) => r.message === "b", "busy", { times: 1 })
      .rejectWhen((r) => {
        if (r.message === "c" && calls++ === 0) throw new Error("predicate bug");
        return false;
      });
    await expect(Promise.resolve(sink.send(msgs("a", "b", "c"), ctx()))).rejects.toThrow("predicate bug");
    expect(sink.messages()).toEqual([]);
    expect(sink.count).toBe(0);
    // The engine resends the whole batch: the `times: 1` rule is still unused, so "b" is retried once, then stored.
    const again = (await sink.send(msgs("a", "b", "c"), ctx())) as { outcomes: RecordOutcome[] };
    expect(again.outcomes.map((o) => o.status)).toEqual(["delivered", "retry", "delivered"]);
    expect(await sink.send(msgs("b"), ctx())).toEqual({ status: "delivered" });
    expect(sink.messages()).toEqual(["a", "c", "b"]);
  });

  it("latency delays the answer and follows fake timers", async () => {
    vi.useFakeTimers();
    const sink = new MemorySink({ name: "mem", latencyMs: 500 });
    let answered = false;
    const pending = Promise.resolve(sink.send(msgs("a"), ctx())).then((r) => ((answered = true), r));
    await vi.advanceTimersByTimeAsync(499);
    expect(answered).toBe(false);
    expect(sink.inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await pending).toEqual({ status: "delivered" });
    expect(sink.count).toBe(1);
  });

  it("an abort during latency ends the send at once, stores nothing and keeps the injected failure", async () => {
    vi.useFakeTimers();
    const sink = new MemorySink({ name: "mem" }).setLatency(10_000).failNext(1);
    const controller = new AbortController();
    const pending = Promise.resolve(sink.send(msgs("a"), { signal: controller.signal }));
    const settled = rejectionOf<SinkError>(pending);
    controller.abort(new Error("stop deadline"));
    const error = await settled;
    expectAbortedSend(error, sink);
    expect(vi.getTimerCount()).toBe(0);
    sink.setLatency(0);
    expect(await sink.send(msgs("b"), ctx())).toMatchObject({ status: "retry" });
  });

  it("an already aborted signal fails the send without storing", async () => {
    const sink = new MemorySink({ name: "mem" });
    const controller = new AbortController();
    controller.abort();
    await expect(Promise.resolve(sink.send(msgs("a"), { signal: controller.signal }))).rejects.toBeInstanceOf(SinkError);
    expect(sink.count).toBe(0);
  });

  it("block() holds sends until unblock(), in order", async () => {
    const sink = new MemorySink({ name: "mem" }).block();
    const p1 = sink.send(msgs("a"), ctx());
    const p2 = sink.send(msgs("b"), ctx());
    await Promise.resolve();
    expect(sink.inFlight).toBe(2);
    expect(sink.count).toBe(0);
    sink.unblock();
    await Promise.all([p1, p2]);
    expect(sink.messages()).toEqual(["a", "b"]);
    expect(sink.inFlight).toBe(0);
  });

  it("a blocked send ends when its signal aborts", async () => {
    const sink = new MemorySink({ name: "mem" }).block();
    const controller = new AbortController();
    const pending = Promise.resolve(sink.send(msgs("a"), { signal: controller.signal }));
    controller.abort();
    await expect(pending).rejects.toThrow(/send aborted/);
    sink.unblock();
    expect(sink.count).toBe(0);
  });

  it("block() also holds a send that is in its latency wait, until unblock()", async () => {
    vi.useFakeTimers();
    const sink = new MemorySink({ name: "mem", latencyMs: 200 });
    let answered = false;
    const pending = Promise.resolve(sink.send(msgs("a"), ctx())).then((r) => ((answered = true), r));
    await vi.advanceTimersByTimeAsync(50);
    sink.block();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(answered).toBe(false);
    expect(sink.inFlight).toBe(1);
    expect(sink.count).toBe(0);
    sink.unblock();
    expect(await pending).toEqual({ status: "delivered" });
    expect(sink.count).toBe(1);
    expect(sink.inFlight).toBe(0);
  });

  it("a send held by block() after its latency still ends when its signal aborts, and stores nothing", async () => {
    vi.useFakeTimers();
    const sink = new MemorySink({ name: "mem", latencyMs: 200 }).failNext(1);
    const controller = new AbortController();
    const settled = rejectionOf<SinkError>(Promise.resolve(sink.send(msgs("a"), { signal: controller.signal })));
    await vi.advanceTimersByTimeAsync(50);
    sink.block();
    await vi.advanceTimersByTimeAsync(500);
    controller.abort(new Error("stop deadline"));
    const error = await settled;
    expectAbortedSend(error, sink);
    expect(sink.inFlight).toBe(0);
    // The aborted send gave its injected failure back.
    sink.unblock().setLatency(0);
    expect(await sink.send(msgs("b"), ctx())).toMatchObject({ status: "retry" });
  });

  it("a block() that comes again before a held send resumes holds it again", async () => {
    vi.useFakeTimers();
    const sink = new MemorySink({ name: "mem", latencyMs: 200 });
    let answered = false;
    const pending = Promise.resolve(sink.send(msgs("a"), ctx())).then((r) => ((answered = true), r));
    sink.block();
    await vi.advanceTimersByTimeAsync(500);
    sink.unblock().block();
    await vi.advanceTimersByTimeAsync(500);
    expect(answered).toBe(false);
    expect(sink.count).toBe(0);
    sink.unblock();
    expect(await pending).toEqual({ status: "delivered" });
  });

  it("neverAnswer() hangs until aborted, even across unblock()", async () => {
    const sink = new MemorySink({ name: "mem" }).neverAnswer();
    const controller = new AbortController();
    let settled = false;
    const pending = Promise.resolve(sink.send(msgs("a"), { signal: controller.signal })).finally(() => (settled = true));
    sink.unblock();
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(SinkError);
    sink.neverAnswer(false);
    expect(await sink.send(msgs("b"), ctx())).toEqual({ status: "delivered" });
  });

  it("clearFaults() removes every fault", async () => {
    const sink = new MemorySink({ name: "mem", latencyMs: 5 })
      .failNext(3)
      .rejectWhen(() => true)
      .retryWhen(() => true)
      .block()
      .neverAnswer();
    sink.clearFaults();
    expect(await sink.send(msgs("a"), ctx())).toEqual({ status: "delivered" });
  });

  it("open/close are counted, and close is idempotent", () => {
    const sink = new MemorySink({ name: "mem" });
    sink.open();
    sink.close();
    sink.close();
    expect(sink.opens).toBe(1);
    expect(sink.closes).toBe(1);
    expect(sink.closed).toBe(true);
  });
});

describe("MemorySink options", () => {
  it("rejects bad options with what was expected and what arrived", () => {
    expect(() => new MemorySink({ name: "mem", latencyMs: -1 })).toThrow(InvalidOptionError);
    expect(() => new MemorySink({ name: "mem", latencyMs: -1 })).toThrow("Expected `latencyMs` to be a number ≥ 0, got `-1` (number)");
    expect(() => new MemorySink({ name: "mem", failNext: 1.5 })).toThrow("Expected `failNext` to be a non-negative integer, got `1.5` (number)");
    expect(() => new MemorySink({ name: "" })).toThrow(/Expected `name` to be a non-empty string, got `""`/);
    expect(() => new MemorySink(undefined as never)).toThrow("Expected `options` to be an object, got `undefined`");
    expect(() => new MemorySink({ name: "m", rejectWhen: "x" as never })).toThrow("Expected `rejectWhen` to be a function, got `\"x\"` (string)");
    const sink = new MemorySink({ name: "mem" });
    expect(() => sink.setLatency(Number.NaN)).toThrow(InvalidOptionError);
    expect(() => sink.failNext(-1)).toThrow(InvalidOptionError);
    expect(() => sink.rejectWhen(() => true, "")).toThrow("Expected `reason` to be a non-empty string");
    expect(() => sink.retryWhen(() => true, "r", { times: 0 })).toThrow(InvalidOptionError);
  });
});
