// TCP sinks (Logstash json_lines, GELF TCP) report records delivered once the kernel took their bytes. A reset then
// leaves the last of them in doubt, and the replay window writes them again. When close() cannot (the receiver stays
// down), those records were lost after all: the report and a drop event must say so, not only a transport metric.
import { afterEach, describe, expect, it } from "vitest";
import { Aggregator } from "../../../src/aggregator.js";
import type { DropEvent } from "../../../src/events.js";
import { GelfSink } from "../../../src/sinks/gelf.js";
import { LogstashSink } from "../../../src/sinks/logstash.js";
import type { Sink } from "../../../src/sinks/sink.js";
import { StreamReceiver } from "../../helpers/receivers/stream.js";
import { waitFor } from "../../helpers/wait-for.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const N = 300;
const reconnect = { initialDelayMs: 5, maxDelayMs: 20 };
const kinds: { kind: string; delimiter: "\n" | "\0"; make: MakeSink }[] = [
  { kind: "LogstashSink", delimiter: "\n", make: (port) => new LogstashSink({ name: "out", url: `tcp://127.0.0.1:${port}`, reconnect, connectTimeoutMs: 2_000 }) },
  { kind: "GelfSink", delimiter: "\0", make: (port) => new GelfSink({ name: "out", url: `tcp://127.0.0.1:${port}`, reconnect, connectTimeoutMs: 2_000 }) },
];

type MakeSink = (port: number) => Sink & { metrics(): Record<string, number> };

/** N records written, delivered and received; then the receiver resets its connection and goes away for good. */
async function deliveredThenReceiverGone(delimiter: "\n" | "\0", make: MakeSink) {
  const rx = await StreamReceiver.start({ delimiter });
  cleanups.push(() => rx.close());
  const sink = make(rx.port);
  const agg = new Aggregator({ batch: { maxWaitMs: 5 } }).addSink(sink);
  cleanups.push(async () => void (await agg.stop({ timeoutMs: 1_000 })));
  const drops: DropEvent[] = [];
  const errors: string[] = [];
  agg.on("drop", (d) => drops.push(d));
  agg.on("sink:error", (e) => errors.push(e.error.code));
  await agg.start();
  await agg.write(Array.from({ length: N }, (_, i) => ({ message: `line ${i}` })));
  await waitFor(() => agg.metrics().sinks.out!.delivered === N && rx.frames.length === N, { message: `${N} records delivered and received` });
  // Nothing can be written again: what the reset left in doubt is owed for good.
  rx.resetAll();
  await rx.close();
  await waitFor(() => sink.metrics().records_resend_pending === N, { message: "the reset put the replay window in doubt" });
  return { sink, agg, drops, errors };
}

describe("records a TCP sink reported delivered and cannot resend at close", () => {
  it.each(kinds)("$kind: moved from delivered to dropped.lostAtClose, announced by a drop event", async ({ delimiter, make }) => {
    const { sink, agg, drops } = await deliveredThenReceiverGone(delimiter, make);

    const report = await agg.stop({ timeoutMs: 10_000 });

    expect(sink.metrics().records_resend_lost).toBe(N);
    expect(report.sinks.out).toMatchObject({ received: N, delivered: 0, droppedTotal: N, dropped: { lostAtClose: N }, pending: 0 });
    expect(report.totals).toMatchObject({ delivered: 0, dropped: N });
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ sink: "out", reason: "lostAtClose", count: N });
    expect(drops[0]!.detail).toMatch(/could not be written again after three attempts failed/);
  });

  it("cut short by the stop deadline (the reconnect backoff outlasts it): counted in the report all the same", async () => {
    const slow = { initialDelayMs: 30_000, maxDelayMs: 30_000 };
    const { agg, drops, errors } = await deliveredThenReceiverGone("\n", (port) =>
      new LogstashSink({ name: "out", url: `tcp://127.0.0.1:${port}`, reconnect: slow, connectTimeoutMs: 30_000 }),
    );

    const report = await agg.stop({ timeoutMs: 300 });

    expect(report.sinks.out).toMatchObject({ received: N, delivered: 0, dropped: { lostAtClose: N } });
    expect(drops).toEqual([expect.objectContaining({ reason: "lostAtClose", count: N, detail: expect.stringMatching(/by the close deadline/) })]);
    expect(errors).toEqual(["ERR_SINK_CLOSE"]);
  });

  it("a close that writes them again reports nothing lost", async () => {
    const rx = await StreamReceiver.start({ delimiter: "\n" });
    cleanups.push(() => rx.close());
    const sink = kinds[0]!.make(rx.port);
    const agg = new Aggregator({ batch: { maxWaitMs: 5 } }).addSink(sink);
    const drops: DropEvent[] = [];
    agg.on("drop", (d) => drops.push(d));
    await agg.start();
    await agg.write(Array.from({ length: N }, (_, i) => ({ message: `line ${i}` })));
    await waitFor(() => rx.frames.length === N, { message: `${N} records received` });
    rx.resetAll();
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sinks.out).toMatchObject({ received: N, delivered: N, droppedTotal: 0 });
    expect(sink.metrics().records_resend_lost).toBe(0);
    expect(new Set(rx.frames).size).toBe(N);
    expect(drops).toEqual([]);
  });
});
