import { describe, expect, it } from "vitest";
import { Entry } from "../../../src/pipeline/entry.js";
import { Ring } from "../../../src/pipeline/ring.js";
import { Router, type Producer } from "../../../src/pipeline/router.js";
import type { SinkPipeline } from "../../../src/pipeline/sink-pipeline.js";

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

/** The part of a sink lane the router uses: room for everything, and a list of what it was given. */
function lane(): { accepted: string[]; pipeline: SinkPipeline } {
  const accepted: string[] = [];
  const pipeline = { blocks: true, options: {}, counters: { filtered: 0 }, hasRoom: () => true, accept: (e: Entry) => accepted.push(e.json) };
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
});
