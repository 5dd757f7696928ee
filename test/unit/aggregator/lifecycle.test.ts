// Lifecycle edges: stop() while start() runs, sinks and sources added while starting, dead-letter cycles, sinks that
// open late, listeners and filters that throw, thenables from send(), timer-sized options; the class of each error.
import { beforeEach, describe, expect, it } from "vitest";
import {
  Aggregator,
  AggregatorError,
  CollectorError,
  CommandSource,
  ListenerError,
  MemorySink,
  SinkError,
  StateError,
  type Sink,
  type SourceErrorEvent,
} from "../../../src/index.js";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../../helpers/wait-for.js";
import { numbered } from "../../helpers/sinks.js";
import { alive, collectorChildren } from "../../helpers/alive.js";

/** A sink whose open() waits until `release()`; it notes whether close() came after open() had finished. */
function gatedSink(name: string) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const state = { opened: false, closedAfterOpen: undefined as boolean | undefined, openSignal: undefined as AbortSignal | undefined };
  const sink: Sink = {
    name,
    async open({ signal }) {
      state.openSignal = signal;
      await gate;
      state.opened = true;
    },
    send() {},
    close() {
      state.closedAfterOpen = state.opened;
    },
  };
  return { sink, state, release };
}

const node = (code: string) => ({ command: process.execPath, args: ["-e", code] });

/** Collector processes of this test process that were there before the test began (other tests' leftovers). */
let before = new Set<number>();
beforeEach(() => {
  before = new Set(collectorChildren());
});

/** The one collector process started since the test began, once it runs. */
async function bootedCollector(): Promise<number> {
  const fresh = (): number[] => collectorChildren().filter((p) => !before.has(p));
  await waitFor(() => fresh().length === 1, { timeout: 10_000, message: "no collector process while the sink opened" });
  return fresh()[0]!;
}

describe("Aggregator lifecycle", () => {
  it("stop() while sinks open: no collector is started, the sink closes after its open, start() rejects", async () => {
    const { sink, state, release } = gatedSink("slow");
    const agg = new Aggregator()
      .addSink(sink)
      .addSource(new CommandSource({ name: "cmd", ...node("setInterval(() => console.log('tick'), 50)") }));
    const ready: string[] = [];
    agg.on("source:ready", (e) => ready.push(e.source));
    const started = agg.start();
    const startError = started.then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(() => state.openSignal !== undefined, { timeout: 5_000, message: "open() was not called" });
    const stopped = agg.stop({ timeoutMs: 5_000 });
    release();
    const report = await stopped;
    const error = await startError;
    expect(error).toBeInstanceOf(StateError);
    expect((error as AggregatorError).code).toBe("ERR_AGGREGATOR_STOPPED");
    expect(state.closedAfterOpen).toBe(true);
    expect(agg.state).toBe("stopped");
    expect(ready).toEqual([]);
    expect(agg.metrics().sources.cmd).toMatchObject({ state: "idle", pid: undefined });
    expect(report.timedOut).toBe(false);
  });

  it("collector processes boot while the sinks open, and their commands run only once every sink is open", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cla-prepare-"));
    try {
      const marker = join(dir, "ran");
      const { sink, release } = gatedSink("slow");
      const agg = new Aggregator().addSink(sink).addSource(
        new CommandSource({
          name: "cmd",
          ...node(`require("fs").writeFileSync(${JSON.stringify(marker)}, "x"); setInterval(() => {}, 60_000)`),
        }),
      );
      const started = agg.start();
      const pid = await bootedCollector();
      expect(existsSync(marker)).toBe(false);
      expect(agg.metrics().sources.cmd).toMatchObject({ state: "idle" });
      release();
      await started;
      // The booted process is the one that runs the source.
      expect(agg.metrics().sources.cmd).toMatchObject({ state: "running", pid });
      await waitFor(() => existsSync(marker), { timeout: 10_000, message: "the command did not run after start()" });
      await agg.stop({ timeoutMs: 5_000 });
      expect(alive(pid)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a sink that fails to open: start() rejects, the booted collectors are ended and their commands never ran", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cla-prepare-"));
    try {
      const marker = join(dir, "ran");
      let fail!: (e: Error) => void;
      const refused = new Promise<void>((_, reject) => (fail = reject));
      const sink: Sink = { name: "refusing", open: () => refused, send() {} };
      const agg = new Aggregator().addSink(sink).addSource(
        new CommandSource({
          name: "cmd",
          ...node(`require("fs").writeFileSync(${JSON.stringify(marker)}, "x"); setInterval(() => {}, 60_000)`),
        }),
      );
      const started = agg.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      const pid = await bootedCollector();
      fail(new Error("cluster unreachable"));
      const error = (await started) as AggregatorError;
      expect(error).toBeInstanceOf(SinkError);
      expect(error.code).toBe("ERR_SINK_OPEN");
      // start() leaves nothing running: the process that waited for its INIT was ended before start() rejected.
      expect(alive(pid)).toBe(false);
      expect(collectorChildren().filter((p) => !before.has(p))).toEqual([]);
      expect(existsSync(marker)).toBe(false);
      expect(agg.metrics().sources.cmd).toMatchObject({ pid: undefined });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("stop() while a sink's open() never finishes aborts the open at the deadline", async () => {
    const { sink, state } = gatedSink("stuck");
    const agg = new Aggregator().addSink(sink);
    const started = agg.start().catch((e: unknown) => e);
    await waitFor(() => state.openSignal !== undefined, { timeout: 5_000, message: "open() was not called" });
    await agg.stop({ timeoutMs: 100 });
    expect(state.openSignal!.aborted).toBe(true);
    expect(((await started) as AggregatorError).code).toBe("ERR_AGGREGATOR_STOPPED");
  });

  it("a sink whose open() never settles fails start() after openTimeoutMs (ERR_SINK_OPEN, announced, its signal aborted)", async () => {
    const { sink, state } = gatedSink("stuck");
    const agg = new Aggregator().addSink(sink, { openTimeoutMs: 50 });
    const errors: AggregatorError[] = [];
    agg.on("sink:error", (e) => errors.push(e.error));
    const error = (await agg.start().then(
      () => undefined,
      (e: unknown) => e,
    )) as AggregatorError;
    expect(error).toBeInstanceOf(SinkError);
    expect(error).toMatchObject({ code: "ERR_SINK_OPEN", message: 'sink "stuck" did not open within 50 ms (openTimeoutMs)' });
    expect(errors).toEqual([error]);
    expect(state.openSignal!.aborted).toBe(true);
    expect(agg.state).toBe("stopped");
  });

  it("a sink added while running whose first open() never settles is opened again after openTimeoutMs", async () => {
    const inner = new MemorySink({ name: "slow" });
    let opens = 0;
    const slow: Sink = {
      name: "slow",
      open: () => (++opens === 1 ? new Promise<void>(() => undefined) : undefined),
      send: (batch, ctx) => inner.send(batch, ctx),
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } });
    const codes: string[] = [];
    agg.on("sink:error", (e) => codes.push(e.error.code));
    await agg.start();
    agg.addSink(slow, { openTimeoutMs: 50, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
    await agg.write(numbered(10));
    await inner.waitForCount(10, { timeout: 10_000 });
    expect(opens).toBe(2);
    expect(codes).toEqual(["ERR_SINK_OPEN"]);
    await agg.stop();
  });

  it("a sink and a source added while start() runs are opened and started", async () => {
    const { sink, release } = gatedSink("first");
    const late = new MemorySink({ name: "late" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } }).addSink(sink);
    const started = agg.start();
    expect(agg.state).toBe("starting");
    agg.addSink(late);
    // The command stays up after its line: one that exits is restarted and prints it again.
    agg.addSource(new CommandSource({ name: "cmd", ...node("console.log('from the late source'); setInterval(() => {}, 60_000)"), parser: "plain" }));
    release();
    await started;
    await late.waitForCount(1, { timeout: 10_000 });
    expect(late.messages()).toEqual(["from the late source"]);
    expect(agg.metrics().sinks.late!.state).toBe("open");
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(report.sinks.late).toMatchObject({ received: 1, delivered: 1, pending: 0 });
  });

  it("rejects dead-letter routes that form a cycle, at start() and at addSink() while running", async () => {
    const cycle = new Aggregator()
      .addSink(new MemorySink({ name: "a" }), { deadLetter: "b" })
      .addSink(new MemorySink({ name: "b" }), { deadLetter: "c" })
      .addSink(new MemorySink({ name: "c" }), { deadLetter: "b" });
    await expect(cycle.start()).rejects.toMatchObject({ code: "ERR_INVALID_OPTION", message: expect.stringContaining("b → c → b") });
    expect(cycle.state).toBe("idle");

    const chain = new Aggregator()
      .addSink(new MemorySink({ name: "a" }), { deadLetter: "b" })
      .addSink(new MemorySink({ name: "b" }), { deadLetter: "c" })
      .addSink(new MemorySink({ name: "c" }));
    await chain.start();
    await chain.stop();
  });

  it("a sink added while running whose open() fails is opened again with backoff, and then gets its records", async () => {
    let attempts = 0;
    const inner = new MemorySink({ name: "flaky" });
    const flaky: Sink = {
      name: "flaky",
      open() {
        if (++attempts <= 2) throw new Error(`refused (attempt ${attempts})`);
      },
      send: (batch, ctx) => inner.send(batch, ctx),
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } });
    const errors: AggregatorError[] = [];
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    agg.addSink(flaky, { retry: { baseDelayMs: 5, maxDelayMs: 20 } });
    await agg.write(numbered(100));
    await inner.waitForCount(100, { timeout: 10_000 });
    expect(attempts).toBe(3);
    expect(errors.map((e) => e.code)).toEqual(["ERR_SINK_OPEN", "ERR_SINK_OPEN"]);
    // The sink threw a plain Error: the report is the library's SinkError, with what it threw as the cause.
    for (const e of errors) expect(e).toBeInstanceOf(SinkError);
    expect((errors[0]!.cause as Error).message).toBe("refused (attempt 1)");
    expect(agg.metrics().sinks.flaky!.state).toBe("open");
    const report = await agg.stop();
    expect(report.sinks.flaky).toMatchObject({ received: 100, delivered: 100, pending: 0 });
  });

  it("a listener that throws is reported as an error event and the lane goes on", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ queue: { maxRecords: 10, whenFull: "block" }, batch: { maxRecords: 10, maxWaitMs: 0 } }).addSink(mem);
    let thrown = 0;
    agg.on("delivered", () => {
      if (thrown++ === 0) throw new Error("listener bug");
    });
    const errors: AggregatorError[] = [];
    agg.on("error", (e) => errors.push(e));
    await agg.start();
    await agg.write(numbered(30));
    await mem.waitForCount(30, { timeout: 5_000 });
    expect(errors.map((e) => [e.code, e.message])).toEqual([["ERR_LISTENER", 'a "delivered" listener threw: listener bug']]);
    expect(errors[0]).toBeInstanceOf(ListenerError);
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(report.sinks.mem).toMatchObject({ received: 30, delivered: 30, pending: 0 });
  });

  it("a send() that returns a non-native thenable still ends at sendTimeoutMs", async () => {
    let calls = 0;
    const sink: Sink = {
      name: "thenable",
      send() {
        calls++;
        // The first send's thenable never settles; later ones deliver.
        if (calls === 1) return { then() {} } as unknown as Promise<void>;
        return { then: (resolve: (v: undefined) => void) => resolve(undefined) } as unknown as Promise<void>;
      },
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(sink, { sendTimeoutMs: 50, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
    const retries: string[] = [];
    agg.on("retry", (e) => retries.push(e.reason));
    await agg.start();
    await agg.write(numbered(5));
    await waitFor(() => agg.metrics().sinks.thenable!.delivered === 5, { timeout: 5_000, message: "the timed-out send was not retried" });
    expect(calls).toBe(2);
    expect(retries).toEqual(["sendTimeout"]);
    await agg.stop();
  });

  it("a filter that throws leaves the record out of that sink, counted and announced", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(mem, {
      filter: (r) => {
        if (r.n === 1 || r.n === 2) throw new Error(`cannot judge ${String(r.n)}`);
        return true;
      },
    });
    const errors: AggregatorError[] = [];
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    await agg.write(numbered(4));
    await mem.waitForCount(2, { timeout: 5_000 });
    expect(mem.records.map((r) => r.n)).toEqual([0, 3]);
    expect(agg.metrics().sinks.mem).toMatchObject({ filtered: 2, filterErrors: 2 });
    // At most one event a second per sink: the first throw is announced.
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ["ERR_SINK_FILTER", 'the filter of sink "mem" threw (1 record(s) so far, left out of this sink): cannot judge 1'],
    ]);
    expect(errors[0]).toBeInstanceOf(SinkError);
    await agg.stop();
  });

  it("refuses delays Node's timers cannot wait (they would fire after 1 ms)", async () => {
    const max = 2 ** 31 - 1;
    expect(() => new Aggregator().addSink(new MemorySink({ name: "m" }), { sendTimeoutMs: max + 1 })).toThrow(/at most 2147483647 ms/);
    expect(() => new Aggregator({ batch: { maxWaitMs: max + 1 } })).toThrow(/batch.maxWaitMs/);
    expect(() => new Aggregator({ retry: { maxDelayMs: Number.MAX_SAFE_INTEGER } })).toThrow(/retry.maxDelayMs/);
    expect(() => new Aggregator().addSink(new MemorySink({ name: "m" }), { sendTimeoutMs: max })).not.toThrow();
    const agg = new Aggregator().addSink(new MemorySink({ name: "m" }));
    await agg.start();
    await expect(agg.stop({ timeoutMs: 2 ** 31 })).rejects.toMatchObject({ code: "ERR_INVALID_OPTION" });
    const report = await agg.stop({ timeoutMs: max });
    expect(report.timedOut).toBe(false);
  });

  it("calls made in the wrong state are refused with a StateError", async () => {
    const agg = new Aggregator().addSink(new MemorySink({ name: "m" }));
    await agg.start();
    const twice = await agg.start().catch((e: unknown) => e);
    expect(twice).toBeInstanceOf(StateError);
    expect(twice).toMatchObject({ code: "ERR_INVALID_STATE", message: "start() called while the aggregator is running" });
    await agg.stop();
    const late = [
      () => agg.addSink(new MemorySink({ name: "late" })),
      () => agg.addSource(new CommandSource({ name: "late", ...node("") })),
    ].map((call) => {
      try {
        call();
        return undefined;
      } catch (error) {
        return error;
      }
    });
    const restart = await agg.start().catch((e: unknown) => e);
    for (const error of [...late, restart]) {
      expect(error).toBeInstanceOf(StateError);
      expect(error).toMatchObject({ code: "ERR_AGGREGATOR_STOPPED" });
    }
  });

  it.each([
    [
      "throws",
      (): void => {
        throw new Error("close refused");
      },
    ],
    [
      "rejects later",
      async (): Promise<void> => {
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error("close refused");
      },
    ],
  ])("a sink whose close() %s reports a SinkError (ERR_SINK_CLOSE) with its cause, and the stop completes", async (_, close) => {
    const sink: Sink = { name: "unclosable", send() {}, close };
    const agg = new Aggregator().addSink(sink);
    const errors: AggregatorError[] = [];
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(report.timedOut).toBe(false);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SinkError);
    expect(errors[0]).toMatchObject({ code: "ERR_SINK_CLOSE", sink: "unclosable", message: 'sink "unclosable" failed to close: close refused' });
    expect((errors[0]!.cause as Error).message).toBe("close refused");
  });

  it("a healthy sink closed at a deadline another sink held up is not reported, nor its close() aborted", async () => {
    let aborted = false;
    const healthy: Sink = {
      name: "healthy",
      send() {},
      close: (ctx) => {
        ctx?.signal.addEventListener("abort", () => (aborted = true));
      },
    };
    const agg = new Aggregator({ batch: { maxRecords: 10, maxWaitMs: 0 } }).addSink(healthy).addSink(new MemorySink({ name: "stuck" }).neverAnswer());
    const errors: AggregatorError[] = [];
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    await agg.write(numbered(20));
    await agg.stop({ timeoutMs: 100 });
    expect(errors.filter((e) => e.code === "ERR_SINK_CLOSE")).toEqual([]);
    expect(aborted).toBe(false);
  });

  it("a sink whose close() does not finish by the deadline is aborted and announced (ERR_SINK_CLOSE), once", async () => {
    let signal: AbortSignal | undefined;
    const sink: Sink = {
      name: "slow-close",
      send() {},
      close: (ctx) => {
        signal = ctx?.signal;
        return new Promise<void>(() => undefined);
      },
    };
    const agg = new Aggregator().addSink(sink);
    const errors: AggregatorError[] = [];
    agg.on("sink:error", (e) => errors.push(e.error));
    await agg.start();
    await agg.stop({ timeoutMs: 50 });
    expect(signal?.aborted).toBe(true);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "ERR_SINK_CLOSE", sink: "slow-close", message: 'sink "slow-close" did not close by the deadline: its close() was aborted' });
  });

  it.each([
    ["stop()", async (agg: Aggregator) => (await agg.stop({ timeoutMs: 0 })).sinks.mem!],
    ["removeSink()", (agg: Aggregator) => agg.removeSink("mem", { timeoutMs: 0 })],
  ])("%s with a deadline of 0 counts a partial batch it flushed and that was answered at once as delivered", async (_what, end) => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxRecords: 100, maxWaitMs: 60_000 } }).addSink(mem);
    await agg.start();
    await agg.write(numbered(3));
    const counters = await end(agg);
    expect(mem.count).toBe(3);
    expect(counters).toMatchObject({ received: 3, delivered: 3, pending: 0 });
    const report = await agg.stop({ timeoutMs: 1_000 });
    expect(report.timedOut).toBe(false);
    expect(report.sources.host).toMatchObject({ admitted: 3, settled: 3 });
  });

  it("a ctx.lost that comes after the stop's report was built changes nothing (the report and counters are final)", async () => {
    let late: (() => void) | undefined;
    const sink: Sink = {
      name: "late",
      send() {},
      close(ctx) {
        return new Promise<void>((resolve) => {
          late = () => {
            ctx.lost?.(5, "said too late");
            resolve();
          };
        });
      },
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(sink);
    const drops: string[] = [];
    agg.on("drop", (d) => drops.push(d.reason));
    await agg.start();
    await agg.write(numbered(5));
    await waitFor(() => agg.metrics().sinks.late!.delivered === 5, { message: "5 delivered" });
    const report = await agg.stop({ timeoutMs: 50 });
    late!();
    expect(report.sinks.late).toMatchObject({ delivered: 5, droppedTotal: 0 });
    expect(agg.metrics().sinks.late).toMatchObject({ delivered: 5, droppedTotal: 0 });
    expect(drops).toEqual([]);
  });

  it("a custom sink's close() says records it reported delivered were lost (ctx.lost): moved to dropped.lostAtClose, also when said just after the deadline's abort", async () => {
    const sink: Sink = {
      name: "lossy",
      send() {},
      async close(ctx) {
        // Gives up only once aborted, and a timer later (a socket's close event, say).
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => setTimeout(resolve, 5), { once: true }));
        ctx.lost?.(7, "7 records were in a buffer it could not flush");
        ctx.lost?.(0, "nothing");
      },
    };
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(sink);
    const drops: { reason: string; count: number; detail?: string | undefined }[] = [];
    agg.on("drop", ({ reason, count, detail }) => drops.push({ reason, count, detail }));
    await agg.start();
    await agg.write(numbered(20));
    await waitFor(() => agg.metrics().sinks.lossy!.delivered === 20, { message: "20 delivered" });
    expect(agg.prometheus()).toContain('child_log_agg_sink_delivered_total{sink="lossy"} 20\n');
    const report = await agg.stop({ timeoutMs: 50 });
    expect(report.sinks.lossy).toMatchObject({ received: 20, delivered: 13, droppedTotal: 7, dropped: { lostAtClose: 7 }, pending: 0 });
    // Prometheus counters never go down: those 7 stay in delivered_total and count in dropped_total too.
    expect(agg.prometheus()).toContain('child_log_agg_sink_delivered_total{sink="lossy"} 20\n');
    expect(agg.prometheus()).toContain('child_log_agg_sink_dropped_total{sink="lossy",reason="lostAtClose"} 7\n');
    expect(drops).toEqual([{ reason: "lostAtClose", count: 7, detail: "7 records were in a buffer it could not flush" }]);
  });

  it("a source added while running whose start fails with a plain Error is reported as a CollectorError", async () => {
    /** A CommandSource whose runtime's start() rejects with something that is not the library's error. */
    class UnstartableSource extends CommandSource {
      override createRuntime(...args: Parameters<CommandSource["createRuntime"]>): ReturnType<CommandSource["createRuntime"]> {
        const runtime = super.createRuntime(...args);
        runtime.start = () => Promise.reject(new Error("no collector today"));
        return runtime;
      }
    }
    const agg = new Aggregator().addSink(new MemorySink({ name: "m" }));
    const errors: SourceErrorEvent[] = [];
    agg.on("source:error", (e) => errors.push(e));
    await agg.start();
    agg.addSource(new UnstartableSource({ name: "broken", ...node("") }));
    await waitFor(() => errors.length > 0, { timeout: 5_000, message: "no source:error for the source that could not start" });
    expect(errors[0]!.source).toBe("broken");
    expect(errors[0]!.error).toBeInstanceOf(CollectorError);
    expect(errors[0]!.error).toMatchObject({ code: "ERR_COLLECTOR_CRASHED", source: "broken", message: 'source "broken" failed to start: no collector today' });
    await agg.stop({ timeoutMs: 5_000 });
  });
});
