import { describe, expect, it } from "vitest";
import { Entry } from "../../../src/pipeline/entry.js";
import { Ring } from "../../../src/pipeline/ring.js";
import { Router, type Producer } from "../../../src/pipeline/router.js";
import type { SinkPipeline } from "../../../src/pipeline/sink-pipeline.js";
import { Slice } from "../../../src/pipeline/slice.js";

/** A producer that counts how often the router looks at its inbox. */
function producer(name: string): Producer & { looks: number; admitted: number } {
  const inbox = new Ring<Entry>();
  const p = {
    name,
    looks: 0,
    admitted: 0,
    get inbox() {
      p.looks++;
      return inbox;
    },
    onAdmitted(count: number) {
      p.admitted += count;
    },
  };
  return p;
}

/** The part of a sink lane the router uses: a `block` lane with room while `room` is true, and what it was given. */
function lane(): { accepted: string[]; room: boolean; pipeline: SinkPipeline } {
  const out = { accepted: [] as string[], room: true, pipeline: undefined as unknown as SinkPipeline };
  const pipeline = {
    blocks: true,
    options: {},
    counters: { filtered: 0 },
    hasRoom: () => out.room,
    accept: (e: Entry) => out.accepted.push(e.json),
  };
  out.pipeline = pipeline as unknown as SinkPipeline;
  return out;
}

/** A `block` lane that holds `capacity` entries until `take()` empties it. */
function bounded(capacity: number): { held: string[]; take(): string[]; pipeline: SinkPipeline } {
  const held: string[] = [];
  const pipeline = {
    blocks: true,
    options: {},
    counters: { filtered: 0 },
    hasRoom: () => held.length < capacity,
    accept: (e: Entry) => held.push(e.json),
  };
  return { held, take: () => held.splice(0), pipeline: pipeline as unknown as SinkPipeline };
}

/** A `drop` lane (never full) with a filter, and what it was given. */
function filtered(filter: (record: unknown) => boolean): { accepted: string[]; pipeline: SinkPipeline } {
  const accepted: string[] = [];
  const pipeline = {
    blocks: false,
    options: { filter },
    counters: { filtered: 0 },
    hasRoom: () => true,
    accept: (e: Entry) => accepted.push(e.json),
  };
  return { accepted, pipeline: pipeline as unknown as SinkPipeline };
}

const entry = (text: string): Entry => new Entry(text, text.length, undefined, 0);

describe("Router", () => {
  it("visits only producers with waiting entries, however many idle ones there are", () => {
    const r = new Router();
    const out = lane();
    r.setRoutes([out.pipeline]);
    const idle = Array.from({ length: 10_000 }, (_, i) => producer(`idle-${i}`));
    for (const p of idle) r.addProducer(p);
    const busy = producer("busy");
    r.addProducer(busy);
    for (const p of idle) p.looks = 0;
    for (let k = 0; k < 100; k++) {
      busy.inbox.push(entry(`{"k":${k}}`));
      r.pump(busy);
    }
    expect(out.accepted).toHaveLength(100);
    expect(busy.admitted).toBe(100);
    expect(idle.reduce((n, p) => n + p.looks, 0)).toBe(0);
    expect(r.waiting).toBe(0);
  });

  it("a removed producer gets no more turns", () => {
    const r = new Router();
    const out = lane();
    const a = producer("a");
    const b = producer("b");
    r.addProducer(a);
    r.addProducer(b);
    a.inbox.push(entry('{"from":"a"}'));
    b.inbox.push(entry('{"from":"b"}'));
    r.pump(a);
    r.pump(b); // no routes yet: both wait
    r.removeProducer(a);
    r.setRoutes([out.pipeline]);
    expect(out.accepted).toEqual(['{"from":"b"}']);
  });

  describe("under a full block queue", () => {
    /** `names.length` producers with 100 entries each behind a 10-entry queue: who gets the first `n` out. */
    function firstOut(names: string[], n: number): Record<string, number> {
      const r = new Router();
      const q = bounded(10);
      r.setRoutes([q.pipeline]);
      for (const name of names) {
        const p = producer(name);
        r.addProducer(p);
        for (let i = 0; i < 100; i++) p.inbox.push(entry(`${name}${i}`));
        r.pump(p);
      }
      // The sink takes the whole queue at a time; each time, the router fills it again.
      const out: string[] = [];
      while (out.length < n) {
        out.push(...q.take());
        r.pump();
      }
      const shares: Record<string, number> = {};
      for (const name of names) shares[name] = out.slice(0, n).filter((x) => x.startsWith(name)).length;
      return shares;
    }

    // Each refill is one producer's turn: a fair share is n / producers, give or take one turn (10).
    it.each([["ab"], ["abc"], ["abcd"]])("producers %s take turns at the room freed", (names) => {
      const shares = firstOut(names.split(""), 120);
      for (const share of Object.values(shares)) expect(Math.abs(share - 120 / names.length), JSON.stringify(shares)).toBeLessThanOrEqual(10);
    });

    it("a producer held by its own full sink does not make the one after it wait twice as long", () => {
      const r = new Router();
      const held = lane();
      held.room = false;
      const shared = bounded(10);
      r.setRoutes([shared.pipeline], new Map([["held", held.pipeline]]));
      for (let i = 0; i < 10; i++) shared.held.push("earlier"); // full from the start
      const toHeld = producer("toHeld");
      r.addProducer(toHeld, ["held"]);
      toHeld.inbox.push(entry("0"));
      r.pump(toHeld);
      const b = producer("b");
      const c = producer("c");
      for (const p of [b, c]) {
        r.addProducer(p);
        for (let i = 0; i < 100; i++) p.inbox.push(entry("0"));
        r.pump(p);
      }
      for (let k = 0; k < 12; k++) {
        shared.take();
        r.pump();
      }
      // 12 refills of 10: b and c take turns at them while toHeld waits ahead of both.
      expect([b.admitted, c.admitted]).toEqual([60, 60]);
      expect(toHeld.inbox.length).toBe(1);
    });

    it("runs a filter once per record however many pumps the record waits through", () => {
      const r = new Router();
      const q = bounded(1);
      let calls = 0;
      const f = filtered(() => {
        calls++;
        return true;
      });
      r.setRoutes([q.pipeline, f.pipeline]);
      const p = producer("p");
      r.addProducer(p);
      for (let i = 0; i < 3; i++) p.inbox.push(entry(`{"n":${i}}`));
      for (let k = 0; k < 5; k++) r.pump(p);
      expect(q.held).toEqual(['{"n":0}']);
      expect(calls).toBe(2); // the first, admitted; the second, waiting for room
      for (let k = 0; k < 3; k++) {
        q.take();
        r.pump();
        r.pump();
      }
      expect(f.accepted).toEqual(['{"n":0}', '{"n":1}', '{"n":2}']);
      expect(calls).toBe(3);
    });

    it("queues the entry without the record its filters parsed: what a filter changed in it reaches no sink", () => {
      const r = new Router();
      const got: Entry[] = [];
      const sink = { blocks: false, options: { filter: (rec: Record<string, unknown>) => ((rec.touched = true), true) }, counters: { filtered: 0 }, hasRoom: () => true, accept: (e: Entry) => got.push(e) };
      r.setRoutes([sink as unknown as SinkPipeline]);
      const p = producer("p");
      r.addProducer(p);
      p.inbox.push(new Entry(Buffer.from('{"n":1}'), 7, undefined, 0));
      r.pump(p);
      expect(got).toHaveLength(1);
      expect((got[0] as unknown as { rec: unknown }).rec).toBeUndefined();
      expect(got[0]!.record).toEqual({ n: 1 });
    });

    it("counts a throwing filter once per record, as the record is admitted", () => {
      const r = new Router();
      const q = bounded(1);
      const f = filtered(() => {
        throw new Error("cannot judge");
      });
      const errors: unknown[] = [];
      r.onFilterError = (pipeline, error) => errors.push([pipeline, (error as Error).message]);
      r.setRoutes([q.pipeline, f.pipeline]);
      const p = producer("p");
      r.addProducer(p);
      for (let i = 0; i < 3; i++) p.inbox.push(entry(`{"n":${i}}`));
      for (let k = 0; k < 5; k++) r.pump(p);
      expect(errors).toEqual([[f.pipeline, "cannot judge"]]); // the first; the second waits
      while (q.take().length > 0) r.pump();
      expect(errors).toHaveLength(3);
      expect(f.pipeline.counters.filtered).toBe(3);
      expect(f.accepted).toEqual([]);
    });

    it("judges a waiting record again when the routes change", () => {
      const r = new Router();
      const q = bounded(1);
      const yes = filtered(() => true);
      const no = filtered(() => false);
      r.setRoutes([q.pipeline, yes.pipeline]);
      const p = producer("p");
      r.addProducer(p);
      p.inbox.push(entry('{"n":0}'));
      p.inbox.push(entry('{"n":1}'));
      r.pump(p); // the first in; the second judged by `yes`, waits
      r.setRoutes([q.pipeline, no.pipeline]);
      q.take();
      r.pump();
      expect(q.held).toEqual(['{"n":1}']);
      expect(yes.accepted).toEqual(['{"n":0}']);
      expect(no.accepted).toEqual([]);
      expect(no.pipeline.counters.filtered).toBe(1);
    });
  });

  describe("producers that name their sinks", () => {
    /** Lanes a and b take fan-out; c is only reachable by name (a dead-letter target, say). */
    function setup() {
      const r = new Router();
      const a = lane();
      const b = lane();
      const c = lane();
      const byName = new Map([
        ["a", a.pipeline],
        ["b", b.pipeline],
        ["c", c.pipeline],
      ]);
      r.setRoutes([a.pipeline, b.pipeline], byName);
      return { r, a, b, c, byName };
    }

    function send(r: Router, p: Producer, text: string): void {
      p.inbox.push(entry(text));
      r.pump(p);
    }

    it("go to the named sinks only, a sink outside the fan-out too; the others still fan out", () => {
      const { r, a, b, c } = setup();
      const all = producer("all");
      const onlyB = producer("onlyB");
      const toC = producer("toC");
      r.addProducer(all);
      r.addProducer(onlyB, ["b"]);
      r.addProducer(toC, ["c", "a"]);
      send(r, all, "1");
      send(r, onlyB, "2");
      send(r, toC, "3");
      expect(a.accepted).toEqual(["1", "3"]);
      expect(b.accepted).toEqual(["1", "2"]);
      expect(c.accepted).toEqual(["3"]);
    });

    it("wait only for their own sinks: a full lane holds the producers that route to it, not the others", () => {
      const { r, a, b } = setup();
      const toA = producer("toA");
      const toB = producer("toB");
      const all = producer("all");
      r.addProducer(toA, ["a"]);
      r.addProducer(toB, ["b"]);
      r.addProducer(all);
      b.room = false;
      send(r, toA, "a1");
      send(r, toB, "b1");
      send(r, all, "x1");
      expect(a.accepted).toEqual(["a1"]);
      expect(b.accepted).toEqual([]);
      expect(toB.inbox.length).toBe(1);
      expect(all.inbox.length).toBe(1);
      b.room = true;
      r.pump();
      expect([...b.accepted].sort()).toEqual(["b1", "x1"]); // in turn order, which is not the point here
      expect(a.accepted).toEqual(["a1", "x1"]);
    });

    it("hold their entries while none of their sinks exists, and go on when one is back", () => {
      const { r, a, b, c, byName } = setup();
      const onlyB = producer("onlyB");
      r.addProducer(onlyB, ["b"]);
      byName.delete("b");
      r.setRoutes([a.pipeline], byName);
      send(r, onlyB, "held");
      expect(a.accepted).toEqual([]);
      expect(onlyB.inbox.length).toBe(1);
      expect(r.waiting).toBe(1);
      byName.set("b", b.pipeline);
      r.setRoutes([a.pipeline, b.pipeline], byName);
      expect(b.accepted).toEqual(["held"]);
      expect(c.accepted).toEqual([]);
      expect(r.waiting).toBe(0);
    });

    it("leave an entry pending on the named sinks only (fan-out has two)", () => {
      const { r } = setup();
      const one = producer("one");
      r.addProducer(one, ["c"]);
      const e = entry("e");
      one.inbox.push(e);
      r.pump(one);
      expect(e.pending).toBe(1);
    });
  });

  describe("sliced pumps", () => {
    /** A router on a clock that each accepted entry moves on by `msPerEntry`, with a 4 ms slice. */
    function clocked(msPerEntry: number) {
      let now = 0;
      const r = new Router(new Slice(4, () => now));
      const out = lane();
      const accept = out.pipeline.accept.bind(out.pipeline);
      (out.pipeline as { accept: (e: Entry) => void }).accept = (e) => {
        now += msPerEntry;
        accept(e);
      };
      r.setRoutes([out.pipeline]);
      const p = producer("p");
      r.addProducer(p);
      const texts = Array.from({ length: 2_000 }, (_, i) => `{"i":${i}}`);
      for (const t of texts) p.inbox.push(entry(t));
      return { r, out, p, texts };
    }
    const nextTurnOfTheLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

    it("stop once the slice is spent, after one producer turn, and admit the rest in later turns of the loop, in order", async () => {
      const { r, out, p, texts } = clocked(0.01); // a turn of 512 entries: 5.12 ms
      r.pump(p, true);
      expect(out.accepted).toHaveLength(512);
      expect(r.waiting).toBe(2_000 - 512);
      const seen = [512];
      for (let k = 0; k < 50 && out.accepted.length < texts.length; k++) {
        await nextTurnOfTheLoop();
        if (out.accepted.length !== seen.at(-1)) seen.push(out.accepted.length);
      }
      // Nothing but the router's own continuation pumped: one turn per turn of the loop, to the end.
      expect(seen).toEqual([512, 1024, 1536, 2000]);
      expect(out.accepted).toEqual(texts);
      expect(p.admitted).toBe(2_000);
      expect(r.waiting).toBe(0);
    });

    it("admit everything at once while the slice lasts, and so does a pump the host asked for", () => {
      const quick = clocked(0);
      quick.r.pump(quick.p, true);
      expect(quick.out.accepted).toEqual(quick.texts);
      const slow = clocked(0.01);
      slow.r.pump(slow.p);
      expect(slow.out.accepted).toEqual(slow.texts);
    });
  });

  it("packs(p) is whether a lane of p's own routes packs what arrives: fan-out lanes, or only the sinks it named", () => {
    const packing = (on: boolean) => ({ blocks: true, options: {}, packing: on }) as unknown as SinkPipeline & { packing: boolean };
    const a = packing(false);
    const b = packing(false);
    const other = packing(true);
    const r = new Router();
    r.setRoutes([a, b], new Map([["a", a], ["b", b], ["other", other]]));
    const fanOut = producer("fan-out");
    const namedB = producer("named-b");
    const namedOther = producer("named-other");
    r.addProducer(fanOut);
    r.addProducer(namedB, ["b"]);
    r.addProducer(namedOther, ["other"]);
    expect([r.packs(fanOut), r.packs(namedB), r.packs(namedOther)]).toEqual([false, false, true]);
    (b as { packing: boolean }).packing = true;
    expect([r.packs(fanOut), r.packs(namedB), r.packs(namedOther)]).toEqual([true, true, true]);
    (b as { packing: boolean }).packing = false;
    (a as { packing: boolean }).packing = true;
    expect([r.packs(fanOut), r.packs(namedB), r.packs(namedOther)]).toEqual([true, false, true]);
  });
});
