// ConsoleSink writes exactly the documented lines to the user's stream, and waits when that stream is full.
import { PassThrough, Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConsoleSink, formatPretty } from "../../../src/sinks/console.js";
import { createBatch } from "../../../src/testing/create-batch.js";
import { InvalidOptionError, SinkError } from "../../../src/errors.js";
import type { RecordOutcome, SendResult } from "../../../src/sinks/sink.js";

const ctx = () => ({ signal: new AbortController().signal });
const TS = "2024-05-01T13:04:05.067Z";

function collect(stream: PassThrough): () => string {
  let text = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => (text += chunk));
  return () => text;
}

/** A Writable that accepts one chunk and then holds the write callback until `release()`: a reader that lags. */
function slowStream() {
  const chunks: string[] = [];
  const held: Array<() => void> = [];
  const stream = new Writable({
    highWaterMark: 8,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      held.push(() => cb());
    },
  });
  return {
    stream,
    chunks,
    release() {
      for (const cb of held.splice(0)) cb();
    },
  };
}

/** A send the slow stream cannot take at once, aborted (stop()'s deadline) while it waits for drain: its answer. */
async function abortedSend(sink: ConsoleSink): Promise<SendResult> {
  const controller = new AbortController();
  const pending = sink.send(createBatch([{ message: "x".repeat(64) }]), { signal: controller.signal });
  await ticks();
  controller.abort();
  return pending;
}

const ticks = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe("ConsoleSink output", () => {
  it("pretty: HH:MM:SS.mmm LEVEL [source] message, one line per record, no colors on a non-TTY", async () => {
    const stream = new PassThrough();
    const text = collect(stream);
    const sink = new ConsoleSink({ name: "console", stream, timeZone: "utc" });
    const batch = createBatch(
      [
        { "@timestamp": TS, message: "server started", log: { level: "info" } },
        { "@timestamp": TS, message: "disk almost full", log: { level: "WARNING" as never } },
        { "@timestamp": TS, message: "no level here", service: { name: "billing" } },
      ],
      { source: ["api", "worker", undefined] },
    );
    expect(await sink.send(batch, ctx())).toEqual({ status: "delivered" });
    await ticks(2);
    expect(text()).toBe(
      "13:04:05.067 INFO  [api] server started\n" +
        "13:04:05.067 WARN  [worker] disk almost full\n" +
        "13:04:05.067 -     [billing] no level here\n",
    );
    expect(sink.metrics()).toMatchObject({ sends: 1, records: 3, bytes: Buffer.byteLength(text()) });
  });

  it("pretty with colors paints the level, and escapes control characters from the log", () => {
    const line = formatPretty({ "@timestamp": TS, message: "boom\x1b[2J\x07", log: { level: "error" } }, "api", true, true);
    expect(line).toBe("\x1b[2m13:04:05.067\x1b[0m \x1b[31mERROR\x1b[0m \x1b[35m[api]\x1b[0m boom\\x1b[2J\\x07\n");
    const plain = formatPretty({ "@timestamp": TS, message: "first\nsecond" }, undefined, false, true);
    expect(plain).toBe("13:04:05.067 -     first\n    second\n");
  });

  it("pretty: a level it does not know prints as none, even one named like an Object.prototype key", () => {
    for (const level of ["audit", "constructor", "toString", "__proto__"]) {
      const line = formatPretty({ "@timestamp": TS, message: "m", log: { level } } as never, "app", false, true);
      expect(line, level).toMatch(/^\d\d:\d\d:\d\d\.\d{3} - {4} \[app\] m\n$/);
      expect(formatPretty({ "@timestamp": TS, message: "m", log: { level } } as never, "app", true, true), level).not.toContain("function");
    }
  });

  it("json: the canonical JSON line of each record", async () => {
    const stream = new PassThrough();
    const text = collect(stream);
    const sink = new ConsoleSink({ name: "console", format: "json", stream });
    const batch = createBatch([
      { "@timestamp": TS, message: "a" },
      { "@timestamp": TS, message: "b", user: { id: 7 } },
    ]);
    await sink.send(batch, ctx());
    await ticks(2);
    expect(text()).toBe(batch.json.join("\n") + "\n");
    expect(text().trim().split("\n").map((l) => JSON.parse(l))).toEqual(batch.records);
  });

  it("writes each batch as one string", async () => {
    const { stream, chunks, release } = slowStream();
    const sink = new ConsoleSink({ name: "c", format: "json", stream });
    const pending = sink.send(createBatch([{ message: "a" }, { message: "b" }, { message: "c" }]), ctx());
    release();
    await pending;
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.split("\n")).toHaveLength(4);
  });
});

describe("ConsoleSink backpressure", () => {
  it("waits for drain when the stream's buffer is full, then answers delivered", async () => {
    const { stream, chunks, release } = slowStream();
    const sink = new ConsoleSink({ name: "c", format: "json", stream });
    let answered: RecordOutcome | undefined;
    const pending = sink.send(createBatch([{ message: "x".repeat(64) }]), ctx()).then((r) => (answered = r as RecordOutcome));
    await ticks();
    expect(chunks).toHaveLength(1);
    expect(answered).toBeUndefined();
    expect(sink.metrics().drain_waits).toBe(1);
    release();
    await pending;
    expect(answered).toEqual({ status: "delivered" });
  });

  it("an abort while waiting for drain answers at once, as delivered (the stream holds the text)", async () => {
    const { stream, chunks } = slowStream();
    const sink = new ConsoleSink({ name: "c", format: "json", stream });
    expect(await abortedSend(sink)).toEqual({ status: "delivered" });
    expect(chunks).toHaveLength(1);
  });

  it("a PassThrough with a tiny highWaterMark and a late reader gets every line once", async () => {
    const stream = new PassThrough({ highWaterMark: 16 });
    const sink = new ConsoleSink({ name: "c", format: "json", stream });
    let settled = false;
    const batch = createBatch(Array.from({ length: 50 }, (_, i) => ({ "@timestamp": TS, message: `line ${i}` })));
    const pending = sink.send(batch, ctx()).finally(() => (settled = true));
    await ticks();
    expect(settled).toBe(false);
    const text = collect(stream);
    await pending;
    await ticks(2);
    expect(text()).toBe(batch.json.join("\n") + "\n");
  });
});

describe("ConsoleSink failures and lifecycle", () => {
  it("a stream error does not crash the host; later sends are rejected with the error's code", async () => {
    const stream = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
      },
    });
    const sink = new ConsoleSink({ name: "c", format: "json", stream });
    await sink.send(createBatch([{ message: "a" }]), ctx());
    await ticks();
    const result = (await sink.send(createBatch([{ message: "b" }]), ctx())) as Extract<RecordOutcome, { status: "rejected" }>;
    expect(result.status).toBe("rejected");
    expect(result.reason).toBe("stream_EPIPE");
    expect(result.error).toBeInstanceOf(SinkError);
    sink.close();
    sink.close();
    expect(stream.listenerCount("error")).toBe(0);
  });

  it("close() keeps listening while the stream still holds its text: a later EPIPE does not crash the host", async () => {
    const { stream, chunks } = slowStream();
    const sink = new ConsoleSink({ name: "c", format: "json", stream });
    expect(await abortedSend(sink)).toEqual({ status: "delivered" }); // the text stays in the stream
    sink.close();
    expect(stream.listenerCount("error")).toBe(1);
    // The reader goes away while the text is still held. Without a listener this would be an uncaught EPIPE.
    stream.destroy(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    await ticks();
    expect(chunks).toHaveLength(1);
    expect(stream.listenerCount("error")).toBe(0);
    expect(stream.listenerCount("close")).toBe(0);
  });

  it("close() of a stream that flushes later stops listening then; in use again, it listens again", async () => {
    const { stream, release } = slowStream();
    const sink = new ConsoleSink({ name: "c", format: "json", stream });
    await abortedSend(sink);
    sink.close();
    release();
    await ticks();
    expect(stream.listenerCount("error")).toBe(0);
    expect(stream.listenerCount("drain")).toBe(0);
    const again = sink.send(createBatch([{ message: "z" }]), ctx());
    await ticks();
    release();
    await again;
    expect(stream.listenerCount("error")).toBe(1);
  });

  it("does not end the stream on close", async () => {
    const stream = new PassThrough();
    const sink = new ConsoleSink({ name: "c", stream });
    await sink.send(createBatch([{ message: "a" }]), ctx());
    sink.close();
    expect(stream.writableEnded).toBe(false);
  });

  it("looks up process.stdout only when no stream is given", () => {
    const spy = vi.spyOn(process, "stdout", "get");
    new ConsoleSink({ name: "c", stream: new PassThrough() });
    expect(spy).not.toHaveBeenCalled();
    new ConsoleSink({ name: "c" });
    expect(spy).toHaveBeenCalled();
  });

  it("rejects bad options with what was expected and what arrived", () => {
    expect(() => new ConsoleSink({ name: "c", format: "xml" as never })).toThrow(InvalidOptionError);
    expect(() => new ConsoleSink({ name: "c", format: "xml" as never })).toThrow(
      'Expected `format` to be "pretty" or "json", got `"xml"` (string)',
    );
    expect(() => new ConsoleSink({ name: "c", stream: {} as never })).toThrow("Expected `stream` to be a Writable stream, got an object");
    expect(() => new ConsoleSink({ name: "c", colors: "yes" as never })).toThrow("Expected `colors` to be a boolean");
    expect(() => new ConsoleSink({ name: "c", stream: new PassThrough(), timeZone: "mars" as never })).toThrow(
      'Expected `timeZone` to be "local" or "utc"',
    );
  });
});
