// Records: unserializable input is dropped with a counted reason and an event; missing fields are filled in.
import { describe, expect, it } from "vitest";
import { Aggregator, MemorySink, RecordError, StateError, type DropEvent } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

/**
 * Runs `body` and returns the unhandled rejections it left, once the microtasks after it ran (Node reports them
 * after those). A logger's write() that nobody awaits must leave none.
 */
async function unhandledRejectionsOf(body: () => Promise<void>): Promise<unknown[]> {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    await body();
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
  return unhandled;
}

describe("record intake", () => {
  it("drops cyclic and BigInt records with a counted reason and an event, never a crash", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(m);
    const drops: DropEvent[] = [];
    agg.on("drop", (e) => drops.push(e));
    await agg.start();
    const cyclic: Record<string, unknown> = { message: "loop" };
    cyclic.self = cyclic;
    await agg.write([{ message: "ok 1" }, cyclic, { message: "big", n: 10n }, { message: "ok 2" }]);
    await m.waitForCount(2);
    expect(m.messages()).toEqual(["ok 1", "ok 2"]);
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ sink: undefined, source: "host", reason: "unserializable", count: 2 });
    expect(drops[0]!.detail).toMatch(/circular/i);
    expect(drops[0]!.error).toMatchObject({ code: "ERR_RECORD_UNSERIALIZABLE" });
    expect(drops[0]!.error).toBeInstanceOf(RecordError);
    const report = await agg.stop();
    expect(report.dropped).toEqual({ unserializable: 2 });
    expect(report.totals.dropped).toBe(2);
    expect(agg.metrics().dropped).toEqual({ unserializable: 2 });
  });

  it("applies a record's toJSON() before filling in fields; refuses one that yields no object, or throws, without throwing", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(m);
    const drops: DropEvent[] = [];
    agg.on("drop", (e) => drops.push(e));
    await agg.start();
    class Event {
      constructor(readonly what: string) {}
      toJSON() {
        return { kind: this.what };
      }
    }
    const odd = [
      { toJSON: () => "just a string" },
      { toJSON: () => null },
      { toJSON: () => [1, 2] },
      {
        get message(): string {
          throw new Error("getter boom");
        },
      },
    ];
    const written = agg.write([{ message: "first" }, new Event("login") as never, ...(odd as never[]), { message: "last" }]);
    await expect(written).resolves.toBeUndefined();
    await m.waitForCount(3);
    expect(m.records.map((r) => [r.message, r.kind])).toEqual([
      ["first", undefined],
      ["", "login"],
      ["last", undefined],
    ]);
    expect(typeof m.records[1]!["@timestamp"]).toBe("string");
    expect(m.records[1]).not.toHaveProperty("what");
    expect(drops).toMatchObject([{ reason: "unserializable", count: 4 }]);
    expect(drops[0]!.detail).toMatch(/toJSON\(\) returned `"just a string"` \(string\)/);
    const report = await agg.stop();
    expect(report.dropped).toEqual({ unserializable: 4 });
    expect(report.sinks.m).toMatchObject({ received: 3, delivered: 3 });
  });

  it("a write() nobody awaits, still waiting for queue room at stop(), does not become an unhandled rejection", async () => {
    const unhandled = await unhandledRejectionsOf(async () => {
      const m = new MemorySink({ name: "m" });
      m.block();
      const agg = new Aggregator({ queue: { maxRecords: 2 }, batch: { maxRecords: 1, maxWaitMs: 0 } }).addSink(m);
      await agg.start();
      void agg.write([{ message: "a" }, { message: "b" }, { message: "c" }, { message: "d" }]); // a logger's call
      const awaited = agg.write({ message: "e" });
      const report = await agg.stop({ timeoutMs: 200 });
      await expect(awaited).rejects.toMatchObject({ code: "ERR_AGGREGATOR_STOPPED" });
      expect(report.sources.host!.waiting).toBeGreaterThan(0);
    });
    expect(unhandled).toEqual([]);
  });

  it("bounds what a write source holds waiting for room by the credit window: later writes are refused, counted, announced", async () => {
    const unhandled = await unhandledRejectionsOf(async () => {
      const m = new MemorySink({ name: "m" });
      m.block();
      const agg = new Aggregator({ credit: { records: 10 }, queue: { maxRecords: 2 }, batch: { maxRecords: 1, maxWaitMs: 0 } }).addSink(m);
      const drops: DropEvent[] = [];
      agg.on("drop", (e) => drops.push(e));
      await agg.start();
      // A logger's calls, never awaited: two are admitted (one in flight, one queued), nine wait.
      const accepted: Array<Promise<void>> = [];
      for (let i = 0; i < 11; i++) accepted.push(agg.write({ message: `m${i}` }));
      expect(agg.metrics().sources.host!.waiting).toBe(9);
      // A write that finds room is taken whole, even past the window.
      accepted.push(agg.write([{ message: "a" }, { message: "b" }, { message: "c" }]));
      expect(agg.metrics().sources.host!.waiting).toBe(12);
      const one = agg.write({ message: "refused 1" });
      const two = agg.write([{ message: "refused 2" }, { message: "refused 3" }]);
      await expect(one).rejects.toMatchObject({ code: "ERR_BACKLOG_FULL", source: "host" });
      await expect(two).rejects.toBeInstanceOf(StateError);
      expect(drops).toMatchObject([
        { sink: undefined, source: "host", reason: "writeRefused", count: 1 },
        { sink: undefined, source: "host", reason: "writeRefused", count: 2 },
      ]);
      expect(drops[0]!.detail).toMatch(/already has 12 records \(\d+ bytes\) waiting for queue room/);
      expect(drops[0]!.error).toMatchObject({ code: "ERR_BACKLOG_FULL" });
      expect(agg.metrics().dropped).toEqual({ writeRefused: 3 });
      m.unblock();
      await Promise.all(accepted);
      await m.waitForCount(14);
      // Room again: the backlog is what waits now, not what was ever written.
      await agg.write({ message: "later" });
      await m.waitForCount(15);
      expect(m.messages()).toEqual([...Array.from({ length: 11 }, (_, i) => `m${i}`), "a", "b", "c", "later"]);
      const report = await agg.stop();
      expect(report.dropped).toEqual({ writeRefused: 3 });
      expect(report.totals.dropped).toBe(3);
    });
    expect(unhandled).toEqual([]);
  });

  it("a write source gives back the room a burst took once its backlog is admitted", async () => {
    const m = new MemorySink({ name: "m", keep: 0 });
    m.block();
    const agg = new Aggregator({ queue: { maxRecords: 1 }, batch: { maxRecords: 1, maxWaitMs: 0 } }).addSink(m);
    await agg.start();
    const written = agg.write(Array.from({ length: 5_000 }, (_, i) => ({ message: `m${i}` })));
    const slots = () => (agg as unknown as { writers: Map<string, { inbox: { buf: unknown[] } }> }).writers.get("host")!.inbox.buf.length;
    expect(slots()).toBe(8_192);
    m.unblock();
    await written;
    await waitFor(() => m.delivered === 5_000, { timeout: 10_000, message: "the burst was not delivered" });
    expect(slots()).toBe(64);
    await agg.stop();
  });

  it("bounds the backlog by bytes too", async () => {
    const m = new MemorySink({ name: "m" });
    m.block();
    const agg = new Aggregator({ credit: { records: 1_000, bytes: 1_024 }, queue: { maxRecords: 1 }, batch: { maxRecords: 1, maxWaitMs: 0 } }).addSink(m);
    await agg.start();
    const record = (i: number) => ({ "@timestamp": "2024-05-01T12:00:00.000Z", message: `${i}`.padEnd(300, ".") });
    const size = Buffer.byteLength(JSON.stringify(record(0)));
    const written: Array<Promise<void>> = [];
    for (let i = 0; i < 10; i++) written.push(agg.write(record(i)));
    // One is admitted; the others wait until their bytes reach 1,024 (the write that reaches it is taken).
    const waiting = Math.ceil(1_024 / size);
    expect(agg.metrics().sources.host!.waiting).toBe(waiting);
    expect(agg.metrics().dropped).toEqual({ writeRefused: 10 - 1 - waiting });
    for (const refused of written.slice(1 + waiting)) await expect(refused).rejects.toMatchObject({ code: "ERR_BACKLOG_FULL" });
    m.unblock();
    await m.waitForCount(1 + waiting);
    expect(m.json[0]).toBe(JSON.stringify(record(0)));
    // Admitted bytes leave the backlog: a write is taken again.
    await agg.write(record(99));
    await m.waitForCount(2 + waiting);
    expect(agg.metrics().dropped).toEqual({ writeRefused: 10 - 1 - waiting });
    await agg.stop();
  });

  it("a write() after stop(), or with a bad option, is counted and announced as refused and never an unhandled rejection", async () => {
    const agg = new Aggregator().addSink(new MemorySink({ name: "m" }));
    const drops: DropEvent[] = [];
    agg.on("drop", (e) => drops.push(e));
    const unhandled = await unhandledRejectionsOf(async () => {
      await agg.start();
      void agg.write({ message: "bad source" }, { source: "" }); // a logger's call with a bad option
      await agg.stop();
      void agg.write([{ message: "late 1" }, { message: "late 2" }]); // a logger's call after stop
    });
    expect(unhandled).toEqual([]);
    expect(drops).toMatchObject([
      { reason: "writeRefused", count: 1, source: undefined, error: { code: "ERR_INVALID_OPTION" } },
      { reason: "writeRefused", count: 2, source: "host", error: { code: "ERR_AGGREGATOR_STOPPED" } },
    ]);
    expect(agg.metrics().dropped).toEqual({ writeRefused: 3 });
  });

  it("sinks and filters see the record as written, not the caller's object changed afterwards (nor the other way round)", async () => {
    const seen: unknown[] = [];
    const filtered: unknown[] = [];
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(
      {
        name: "reader",
        send(batch) {
          for (const r of batch.records) {
            seen.push(structuredClone(r));
            (r as Record<string, unknown>).touchedBySink = true;
          }
        },
      },
      { filter: (r) => (filtered.push(structuredClone(r)), true) },
    );
    await agg.start();
    const mine: Record<string, unknown> = { "@timestamp": "2024-05-01T12:00:00.000Z", message: "hello", n: 1, at: new Date(0) };
    const written = agg.write(mine);
    mine.message = "changed after write()";
    mine.n = 2;
    await written;
    await waitFor(() => seen.length === 1, { timeout: 5_000, message: "the record did not reach the sink" });
    const expected = { "@timestamp": "2024-05-01T12:00:00.000Z", message: "hello", n: 1, at: "1970-01-01T00:00:00.000Z" };
    expect(seen).toEqual([expected]);
    expect(filtered).toEqual([expected]);
    expect(mine).not.toHaveProperty("touchedBySink");
    await agg.stop();
  });

  it("fills @timestamp and message, normalizes log.level, and never mutates the caller's object", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(m);
    await agg.start();
    const input = { "@timestamp": 1700000000, log: { level: "WARNING" }, user: "ann" };
    await agg.write(input as never);
    await m.waitForCount(1);
    expect(m.records[0]).toEqual({ "@timestamp": "2023-11-14T22:13:20.000Z", message: "", log: { level: "warn" }, user: "ann" });
    expect(input).toEqual({ "@timestamp": 1700000000, log: { level: "WARNING" }, user: "ann" });
    await agg.stop();
  });

  it("keeps a level it does not know, moves an object level aside, reads ECS's dotted log.level, and ships Errors as ECS error fields", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(m);
    await agg.start();
    const failure = Object.assign(new TypeError("disk full"), { code: "ENOSPC" });
    const inputs = [
      { message: "a", log: { level: "audit" } },
      { message: "b", log: { level: 25 } },
      { message: "c", log: { level: { name: "x" } } },
      { message: "d", "log.level": "ERROR" },
      { message: "e", "log.level": "INFO", log: { level: "warn" } },
      { message: "f", error: failure, cause: new Error("inner") },
    ];
    await agg.write(inputs as never);
    await m.waitForCount(inputs.length);
    const [a, b, c, d, e, f] = m.records.map(({ "@timestamp": _ts, ...rest }) => rest);
    expect(a).toEqual({ message: "a", log: { level: "audit" } });
    expect(b).toEqual({ message: "b", log: { level: "debug" } });
    expect(c).toEqual({ message: "c", log: { level_raw: { name: "x" } } });
    expect(d).toEqual({ message: "d", log: { level: "error" } });
    // A nested level wins; the dotted key then stays a field as written.
    expect(e).toEqual({ message: "e", "log.level": "INFO", log: { level: "warn" } });
    expect(f).toEqual({
      message: "f",
      error: { type: "TypeError", message: "disk full", code: "ENOSPC", stack_trace: expect.stringContaining("TypeError: disk full") },
      cause: { type: "Error", message: "inner", stack_trace: expect.stringContaining("Error: inner") },
    });
    expect(inputs[3]).toEqual({ message: "d", "log.level": "ERROR" });
    // What JSON would ship of an Error is kept (an fs error's own fields, a toJSON()), with ECS's fields added.
    const enoent = Object.assign(new Error("ENOENT: no such file"), { errno: -2, code: "ENOENT", syscall: "open", path: "/x" });
    const upstream = Object.assign(new Error("upstream"), { toJSON: () => ({ status: 503, url: "http://u" }) });
    // A dotted level beside a `log` that is not an object, or a null one, is no level: both stay as written.
    await agg.write([
      { message: "g", error: enoent },
      { message: "h", error: upstream },
      { message: "i", log: "app.log", "log.level": "warn" },
      { message: "j", "log.level": null },
    ] as never);
    await m.waitForCount(inputs.length + 4);
    const [g, h, i, j] = m.records.slice(inputs.length).map(({ "@timestamp": _ts, ...rest }) => rest);
    expect(g!.error).toEqual({ errno: -2, code: "ENOENT", syscall: "open", path: "/x", type: "Error", message: "ENOENT: no such file", stack_trace: expect.any(String) });
    expect(h!.error).toEqual({ status: 503, url: "http://u", type: "Error", message: "upstream", stack_trace: expect.any(String) });
    expect(i).toEqual({ message: "i", log: "app.log", "log.level": "warn" });
    expect(j).toEqual({ message: "j", "log.level": null });
    expect(inputs[5]!.error).toBe(failure);
    await agg.stop();
  });

  it("ships an Error in @timestamp, log.level or host as an object there, a record that is an Error with its message, and survives throwing getters", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator({ hostName: "web-1", batch: { maxWaitMs: 0 } }).addSink(m);
    await agg.start();
    const err = (text: string): Error => Object.assign(new Error(text), { code: "E" });
    const nameThrows = new Error("name throws");
    Object.defineProperty(nameThrows, "name", { get: () => { throw new Error("no name"); } });
    class Event {
      get message(): string {
        return "from a getter";
      }
    }
    await agg.write([
      { message: "a", "@timestamp": err("ts") },
      { message: "b", "log.level": err("level") },
      { message: "c", host: err("host") },
      new Error("the record itself"),
      new Event(),
      { message: nameThrows, error: nameThrows },
    ] as never);
    await m.waitForCount(6);
    const [a, b, c, d, e, f] = m.records;
    const shipped = (text: string) => ({ type: "Error", message: text, code: "E", stack_trace: expect.stringContaining(`Error: ${text}`) });
    // An unreadable timestamp is kept beside the one filled in, as for any other value; not a string spread into characters.
    expect(a!["@timestamp"]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(a!["@timestamp_raw"]).toEqual(shipped("ts"));
    // An object level is moved aside, so Elasticsearch (log.level is a keyword) does not reject the record.
    expect(b!.log).toEqual({ level_raw: shipped("level") });
    expect(b!["log.level"]).toBeUndefined();
    // The Error's inherited `name` no longer hides that the host has none.
    expect(c!.host).toEqual({ ...shipped("host"), name: "web-1" });
    expect(d!.message).toBe("the record itself");
    expect(e!.message).toBe("from a getter");
    expect(f!.message).toBe("name throws");
    // Only the fields whose getters threw are missing (V8 formats the stack with the name, so it goes too).
    expect(f!.error).toEqual({ message: "name throws" });
    await agg.stop();
  });

  it("hostName set on the Aggregator puts host.name on write()'s records that lack one; left unset, they ship as written", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator({ hostName: "web-1", batch: { maxWaitMs: 0 } }).addSink(m);
    await agg.start();
    await agg.write([{ message: "a" }, { message: "b", host: { name: "relay-7" } }, { message: "c", host: { ip: "10.0.0.1" } }]);
    await m.waitForCount(3);
    expect(m.records.map((r) => r.host)).toEqual([{ name: "web-1" }, { name: "relay-7" }, { ip: "10.0.0.1", name: "web-1" }]);
    await agg.stop();
    // The default (os.hostname()) goes on collectors' records only: a test's own records stay as it wrote them.
    const plain = new MemorySink({ name: "m" });
    const agg2 = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(plain);
    await agg2.start();
    await agg2.write({ message: "d" });
    await plain.waitForCount(1);
    expect(plain.records[0]!.host).toBeUndefined();
    await agg2.stop();
  });

  it("rejects write() after stop with a coded error", async () => {
    const agg = new Aggregator().addSink(new MemorySink({ name: "m" }));
    await agg.start();
    await agg.stop();
    await expect(agg.write({ message: "late" })).rejects.toMatchObject({ code: "ERR_AGGREGATOR_STOPPED" });
    await expect(agg.write({ message: "late" })).rejects.toBeInstanceOf(StateError);
  });

  it("rejects write() options that are not an object, or a source that is not a valid name, and admits nothing", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator().addSink(m);
    await agg.start();
    await expect(agg.write({ message: "a" }, null as never)).rejects.toMatchObject({ code: "ERR_INVALID_OPTION", message: expect.stringContaining("`options`") });
    for (const source of ["", 5, "has space", {}]) {
      await expect(agg.write({ message: "a" }, { source: source as never })).rejects.toMatchObject({
        code: "ERR_INVALID_OPTION",
        message: expect.stringContaining("`options.source`"),
      });
    }
    await agg.write({ message: "ok" }, { source: "app-1" });
    const report = await agg.stop();
    expect(m.messages()).toEqual(["ok"]);
    expect(Object.keys(report.sources)).toEqual(["app-1"]);
  });

  it("records with no sink yet wait (backpressure) instead of being lost", async () => {
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } });
    await agg.start();
    let done = false;
    const w = agg.write([{ message: "a" }, { message: "b" }]).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(done).toBe(false);
    const m = new MemorySink({ name: "m" });
    agg.addSink(m);
    await w;
    await m.waitForCount(2);
    await agg.stop();
  });

  it("a filter routes records per sink and counts the rest as filtered", async () => {
    const errors = new MemorySink({ name: "errors" });
    const all = new MemorySink({ name: "all" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } })
      .addSink(errors, { filter: (r) => r.log?.level === "error" })
      .addSink(all);
    await agg.start();
    await agg.write([{ message: "x", log: { level: "info" } }, { message: "y", log: { level: "error" } }]);
    const report = await agg.stop();
    expect(errors.messages()).toEqual(["y"]);
    expect(all.messages()).toEqual(["x", "y"]);
    expect(report.sinks.errors).toMatchObject({ received: 1, delivered: 1, filtered: 1 });
  });
});

describe("removing a write() source", () => {
  it("removeSource() takes a write() name: it leaves metrics(), its counters stay in the report, and the name starts afresh", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 0 } }).addSink(mem);
    await agg.start();
    for (let t = 0; t < 50; t++) await agg.write({ message: `hello from ${t}` }, { source: `tenant-${t}` });
    await mem.waitForCount(50, { timeout: 10_000 });
    for (let t = 0; t < 49; t++) expect(await agg.removeSource(`tenant-${t}`)).toMatchObject({ emitted: 1, admitted: 1, settled: 1, waiting: 0 });
    expect(Object.keys(agg.metrics().sources)).toEqual(["tenant-49"]);
    await expect(agg.removeSource("tenant-0")).rejects.toMatchObject({ code: "ERR_INVALID_OPTION" });
    await agg.write({ message: "back again" }, { source: "tenant-0" });
    const report = await agg.stop();
    expect(Object.keys(report.sources)).toHaveLength(50);
    expect(report.sources["tenant-0"]).toMatchObject({ emitted: 2, admitted: 2, settled: 2 });
    expect(report.sources["tenant-7"]).toMatchObject({ kind: "write", emitted: 1, settled: 1 });
  });

  it("what waits for queue room at the deadline is dropped as sourceRemoved, and its write() rejects", async () => {
    const stuck = new MemorySink({ name: "stuck" });
    stuck.failNext(1_000_000);
    const agg = new Aggregator({ batch: { maxWaitMs: 0 }, retry: { baseDelayMs: 10_000 } }).addSink(stuck, { queue: { maxRecords: 2 }, batch: { maxRecords: 1 } });
    const drops: DropEvent[] = [];
    agg.on("drop", (e) => drops.push(e));
    await agg.start();
    await agg.write([{ message: "a" }, { message: "b" }], { source: "t" });
    const waiting = agg.write({ message: "c" }, { source: "t" });
    const counters = await agg.removeSource("t", { timeoutMs: 50 });
    expect(counters).toMatchObject({ emitted: 3, admitted: 2 });
    await expect(waiting).rejects.toMatchObject({ code: "ERR_INVALID_STATE" });
    expect(drops.map((d) => [d.reason, d.count, d.source])).toEqual([["sourceRemoved", 1, "t"]]);
    await agg.stop({ timeoutMs: 100 });
  });

  it("a stop() while a write() source's removal waits fails its waiting writes and reports them, as for any write source", async () => {
    const stuck = new MemorySink({ name: "stuck" });
    stuck.failNext(1_000_000);
    const agg = new Aggregator({ batch: { maxWaitMs: 0 }, retry: { baseDelayMs: 10_000 } }).addSink(stuck, { queue: { maxRecords: 2 }, batch: { maxRecords: 1 } });
    await agg.start();
    await agg.write([{ message: "a" }, { message: "b" }], { source: "t" });
    const waiting = agg.write({ message: "c" }, { source: "t" });
    const removal = agg.removeSource("t", { timeoutMs: 60_000 });
    const report = await agg.stop({ timeoutMs: 50 });
    await expect(waiting).rejects.toMatchObject({ code: "ERR_AGGREGATOR_STOPPED" });
    await expect(removal).resolves.toMatchObject({ emitted: 3, admitted: 2 });
    expect(report.sources["t"]).toMatchObject({ emitted: 3, admitted: 2, waiting: 1 });
  });
});
