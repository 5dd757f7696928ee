// addSource(source, { sinks }): a source's records go to the sinks it names, and only to those.
import { describe, expect, it } from "vitest";
import { Aggregator, AggregatorError, CommandSource, MemorySink } from "../../../src/index.js";
import { waitFor } from "../../helpers/wait-for.js";

const node = (code: string) => ({ command: process.execPath, args: ["-e", code] });
/** A command that prints `<tag> 0`, `<tag> 1`, … every few ms and keeps running. */
const counting = (name: string, everyMs = 5) =>
  new CommandSource({ name, parser: "plain", ...node(`let i = 0; setInterval(() => console.log("${name} " + i++), ${everyMs})`) });
/** A command that prints `count` lines and stays up (one that exits would be restarted and print them again). */
const printing = (name: string, count: number) =>
  new CommandSource({
    name,
    parser: "plain",
    ...node(`for (let i = 0; i < ${count}; i++) console.log("${name} " + i); setInterval(() => {}, 60_000)`),
  });

const from = (sink: MemorySink, source: string) => sink.messages().filter((m) => m.startsWith(`${source} `)).length;

describe("addSource(source, { sinks })", () => {
  it("refuses a malformed sinks list with ERR_INVALID_OPTION", () => {
    const agg = new Aggregator();
    const bad: [unknown, RegExp][] = [
      [{ sinks: [] }, /`sinks` to be a non-empty array/],
      [{ sinks: "es" }, /`sinks` to be a non-empty array of sink names, got `"es"`/],
      [{ sinks: ["es", "es"] }, /names "es" twice/],
      [{ sinks: ["has space"] }, /`sinks\[0\]` to be a name/],
      [{ sinks: [42] }, /`sinks\[0\]` to be a non-empty string/],
      [null, /source options/],
    ];
    for (const [options, text] of bad) {
      let thrown: unknown;
      try {
        agg.addSource(printing("x", 1), options as never);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, String(text)).toBeInstanceOf(AggregatorError);
      expect(thrown).toMatchObject({ code: "ERR_INVALID_OPTION" });
      expect((thrown as Error).message).toMatch(text);
    }
    // Nothing half-added: the name is still free.
    expect(() => agg.addSource(printing("x", 1))).not.toThrow();
  });

  it("an unknown sink name fails start() before any sink opens or collector runs", async () => {
    const m = new MemorySink({ name: "m" });
    const agg = new Aggregator().addSink(m).addSource(printing("a", 1), { sinks: ["m", "nope"] });
    await expect(agg.start()).rejects.toMatchObject({ code: "ERR_UNKNOWN_SINK", source: "a", sink: "nope" });
    expect(m.opens).toBe(0);
    expect(agg.metrics().sources.a).toMatchObject({ state: "idle", pid: undefined });
  });

  it("an unknown sink name fails addSource() once running, and the source is not added", async () => {
    const agg = new Aggregator().addSink(new MemorySink({ name: "m" }));
    await agg.start();
    expect(() => agg.addSource(printing("late", 1), { sinks: ["nope"] })).toThrow(
      expect.objectContaining({ code: "ERR_UNKNOWN_SINK", source: "late" }),
    );
    expect(agg.metrics().sources.late).toBeUndefined();
    await agg.stop({ timeoutMs: 5_000 });
  });

  it("routes each source to its named sinks (a dead-letter target too); the others fan out as before", async () => {
    const m1 = new MemorySink({ name: "m1" });
    const m2 = new MemorySink({ name: "m2" });
    const dlq = new MemorySink({ name: "dlq" });
    const agg = new Aggregator()
      .addSink(m1)
      .addSink(m2, { deadLetter: "dlq" })
      .addSink(dlq)
      .addSource(printing("a", 200), { sinks: ["m1"] })
      .addSource(printing("b", 300))
      .addSource(printing("c", 100), { sinks: ["dlq", "m2"] });
    await agg.start();
    await m1.waitForCount(500, { timeout: 15_000 });
    await m2.waitForCount(400, { timeout: 15_000 });
    await dlq.waitForCount(100, { timeout: 15_000 });
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect([from(m1, "a"), from(m1, "b"), from(m1, "c")]).toEqual([200, 300, 0]);
    expect([from(m2, "a"), from(m2, "b"), from(m2, "c")]).toEqual([0, 300, 100]);
    expect([from(dlq, "a"), from(dlq, "b"), from(dlq, "c")]).toEqual([0, 0, 100]);
    expect(report.sinks.m1).toMatchObject({ received: 500, delivered: 500, filtered: 0 });
    expect(report.sinks.dlq).toMatchObject({ received: 100, delivered: 100, deadLettered: 0 });
    for (const s of ["a", "b", "c"]) expect(report.sources[s]!.emitted).toBe(report.sources[s]!.settled);
  });

  it("while its only sink is removed, a source's records wait for a sink of that name, and none is lost", async () => {
    const first = new MemorySink({ name: "out" });
    const agg = new Aggregator({ batch: { maxRecords: 10, maxWaitMs: 10 } })
      .addSink(first)
      .addSink(new MemorySink({ name: "other" }))
      .addSource(counting("a"), { sinks: ["out"] });
    await agg.start();
    await first.waitForCount(20, { timeout: 10_000 });
    await agg.removeSink("out", { timeoutMs: 5_000 });
    await waitFor(() => agg.metrics().sources.a!.waiting > 0, { timeout: 10_000, message: "no record of source a waited for a sink" });
    const second = new MemorySink({ name: "out" });
    agg.addSink(second);
    await second.waitForCount(20, { timeout: 10_000 });
    const report = await agg.stop({ timeoutMs: 5_000 });
    const seen = [...first.messages(), ...second.messages()].map((m) => Number(m.slice(2)));
    const max = Math.max(...seen);
    expect(new Set(seen).size).toBe(max + 1); // 0..max, each at least once
    expect(report.sinks.other!.received).toBe(0);
    expect(report.sources.a!.settled).toBe(report.sources.a!.emitted);
  });
});

describe("write(records, { source, sinks })", () => {
  it("a write source's records go to the sinks its first write named, later writes keep them, other sources go everywhere", async () => {
    const a = new MemorySink({ name: "a" });
    const b = new MemorySink({ name: "b" });
    const agg = new Aggregator({ batch: { maxWaitMs: 1 } }).addSink(a).addSink(b);
    await agg.start();
    await agg.write({ message: "audit 1" }, { source: "audit", sinks: ["a"] });
    await agg.write({ message: "audit 2" }, { source: "audit" });
    await agg.write({ message: "audit 3" }, { source: "audit", sinks: ["a"] });
    await agg.write({ message: "app 1" });
    await waitFor(() => a.count === 4 && b.count === 1, { message: () => `a ${a.count} of 4, b ${b.count} of 1` });
    expect(a.messages().sort()).toEqual(["app 1", "audit 1", "audit 2", "audit 3"]);
    expect(b.messages()).toEqual(["app 1"]);
    const report = await agg.stop();
    expect(report.sources.audit).toMatchObject({ emitted: 3, settled: 3 });
  });

  it("rejects an unknown sink, a malformed list, and other sinks than the source's first write named", async () => {
    const agg = new Aggregator().addSink(new MemorySink({ name: "a" })).addSink(new MemorySink({ name: "b" }));
    await agg.start();
    await expect(agg.write({ message: "x" }, { source: "s1", sinks: ["nope"] })).rejects.toMatchObject({ code: "ERR_UNKNOWN_SINK", sink: "nope" });
    await expect(agg.write({ message: "x" }, { source: "s1", sinks: [] })).rejects.toMatchObject({ code: "ERR_INVALID_OPTION" });
    await agg.write({ message: "x" }, { source: "s1", sinks: ["a"] });
    await expect(agg.write({ message: "y" }, { source: "s1", sinks: ["b"] })).rejects.toMatchObject({
      code: "ERR_INVALID_OPTION",
      message: expect.stringMatching(/goes to sinks "a", as its first write said; this write names "b"/),
    });
    // The same sinks in another order are the same route.
    await agg.write({ message: "z" }, { source: "s2", sinks: ["a", "b"] });
    await expect(agg.write({ message: "z" }, { source: "s2", sinks: ["b", "a"] })).resolves.toBeUndefined();
    // A source whose first write named no sinks goes to every sink; naming some later is refused.
    await agg.write({ message: "w" }, { source: "s3" });
    await expect(agg.write({ message: "w" }, { source: "s3", sinks: ["a"] })).rejects.toMatchObject({ code: "ERR_INVALID_OPTION", message: expect.stringMatching(/goes to every sink/) });
    const report = await agg.stop();
    // Nothing of a refused write was taken.
    expect(report.sources.s1).toMatchObject({ emitted: 1 });
    expect(report.sources.s3).toMatchObject({ emitted: 1 });
  });
});
