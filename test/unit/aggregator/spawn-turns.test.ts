// start() boots one collector process per turn of the event loop. Node's spawn holds the thread until the child has
// become a Node process, so spawning every source's collector in one turn froze the host for all of them (214 ms for
// 8 sources, 729 ms for 16 on the CI VM). The processes are real; spawn is only watched, to note which turn each
// call came in.
import { afterEach, describe, expect, it, vi } from "vitest";
import { Aggregator, CommandSource, MemorySink, type Sink } from "../../../src/index.js";
import { collectorChildren } from "../../helpers/alive.js";
import { waitFor } from "../../helpers/wait-for.js";

const spawns = vi.hoisted(() => ({ collectors: 0, sameTurn: 0, pending: false }));
vi.mock("node:child_process", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:child_process")>();
  return {
    ...real,
    spawn: (...args: Parameters<typeof real.spawn>) => {
      const argv = (Array.isArray(args[1]) ? args[1] : []) as readonly string[];
      if (argv.some((a) => /collector[/\\]main\.[jt]s$/.test(a))) {
        spawns.collectors++;
        // Set until the next check phase: a second spawn before then came in the same turn.
        if (spawns.pending) spawns.sameTurn++;
        spawns.pending = true;
        setImmediate(() => (spawns.pending = false));
      }
      return (real.spawn as (...a: unknown[]) => ReturnType<typeof real.spawn>)(...args);
    },
  };
});

const running = (name: string) => new CommandSource({ name, command: process.execPath, args: ["-e", "setInterval(() => {}, 60_000)"] });

let agg: Aggregator | undefined;
afterEach(async () => {
  await agg?.stop({ timeoutMs: 5_000 });
  agg = undefined;
  spawns.collectors = spawns.sameTurn = 0;
});

describe("start() spawns collectors one per turn of the event loop", () => {
  it("while a sink opens", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sink: Sink = { name: "slow", open: () => gate, send() {} };
    agg = new Aggregator().addSink(sink);
    for (let i = 0; i < 4; i++) agg.addSource(running(`cmd${i}`));
    const started = agg.start();
    await waitFor(() => spawns.collectors === 4, { timeout: 10_000, message: `${spawns.collectors} of 4 collectors spawned while the sink opened` });
    expect(spawns.sameTurn).toBe(0);
    release();
    await started;
    // The booted processes run the sources: none was spawned again.
    expect(spawns.collectors).toBe(4);
    expect(Object.values(agg.metrics().sources).map((s) => s.state)).toEqual(["running", "running", "running", "running"]);
  });

  it("when the sinks open at once (the collectors still to boot are not all spawned by the starts)", async () => {
    agg = new Aggregator().addSink(new MemorySink({ name: "mem" }));
    for (let i = 0; i < 4; i++) agg.addSource(running(`cmd${i}`));
    await agg.start();
    expect(spawns.collectors).toBe(4);
    expect(spawns.sameTurn).toBe(0);
  });

  it("sources added while running: one spawn per turn, and none for one removed before its turn", async () => {
    agg = new Aggregator().addSink(new MemorySink({ name: "mem" }));
    await agg.start();
    const ready: string[] = [];
    agg.on("source:ready", (e) => ready.push(e.source));
    for (let i = 0; i < 4; i++) agg.addSource(running(`late${i}`));
    const removed = agg.removeSource("late2");
    await waitFor(() => ready.length === 3, { timeout: 10_000, message: `${ready.length} of 3 added sources said ready` });
    await removed;
    expect(spawns.collectors).toBe(3);
    expect(spawns.sameTurn).toBe(0);
    expect(ready.sort()).toEqual(["late0", "late1", "late3"]);
  });

  it("a source removed while they boot is not spawned", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    agg = new Aggregator().addSink({ name: "slow", open: () => gate, send() {} });
    for (let i = 0; i < 4; i++) agg.addSource(running(`cmd${i}`));
    const started = agg.start();
    // The first is spawned within start() itself; cmd1 goes before its turn comes.
    expect(spawns.collectors).toBe(1);
    const removed = agg.removeSource("cmd1");
    await waitFor(() => spawns.collectors === 3, { timeout: 10_000, message: `${spawns.collectors} of 3 collectors spawned` });
    release();
    await Promise.all([started, removed]);
    expect(spawns.collectors).toBe(3);
    expect(Object.keys(agg.metrics().sources)).toEqual(["cmd0", "cmd2", "cmd3"]);
  });

  it("stop() while they boot: none is spawned afterwards, and none is left running", async () => {
    const before = new Set(collectorChildren());
    const opening: Sink = {
      name: "opening",
      open: ({ signal }) => new Promise<void>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error))),
      send() {},
    };
    agg = new Aggregator().addSink(opening);
    for (let i = 0; i < 4; i++) agg.addSource(running(`cmd${i}`));
    const started = agg.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(spawns.collectors).toBe(1);
    // The open is aborted at the deadline.
    await agg.stop({ timeoutMs: 300 });
    expect(await started).toMatchObject({ code: "ERR_AGGREGATOR_STOPPED" });
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(spawns.collectors).toBe(1);
    expect(collectorChildren().filter((p) => !before.has(p))).toEqual([]);
  });
});
