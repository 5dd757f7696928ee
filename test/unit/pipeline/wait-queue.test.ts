// WaitQueue: records that wait behind the next batches are held deflated; what comes out must be what went in, in
// order, with each record's source, seq and admission stamp, and entries another lane shares must stay themselves.
import { describe, expect, it } from "vitest";
import { Entry, type AckTarget } from "../../../src/pipeline/entry.js";
import { WaitQueue } from "../../../src/pipeline/wait-queue.js";
import { framedEntries } from "../../helpers/frame-entries.js";
import { mulberry32 } from "../../helpers/random-json.js";

const target = (name: string): AckTarget => ({ name, settle: () => undefined });

/** A log line like the bench's: similar fields, varying values (what deflate sees in a real queue). */
function logLine(i: number): string {
  return JSON.stringify({
    "@timestamp": new Date(1_767_225_600_000 + i * 3).toISOString(),
    message: `GET /api/v1/items/${(i * 7919) % 100_003} answered ${200 + (i % 5)} in ${(i % 97) + 0.25} ms`,
    log: { level: i % 11 === 0 ? "warn" : "info" },
    host: { name: `web-0${i % 4}` },
    trace: { id: ((i * 2_654_435_761) >>> 0).toString(16).padStart(8, "0") },
  });
}

interface Expected {
  json: string;
  seq: number;
  source: AckTarget | undefined;
  stamp: number;
  /** Shared with another lane: must come out as the same object. */
  same?: Entry;
}

function expectSame(out: Entry, want: Expected, at: string): void {
  expect(out.json, at).toBe(want.json);
  expect(out.bytes, at).toBe(Buffer.byteLength(want.json));
  expect(out.seq, at).toBe(want.seq);
  expect(out.source, at).toBe(want.source);
  expect(out.stamp, at).toBe(want.stamp);
  if (want.same !== undefined) expect(out, at).toBe(want.same);
  else expect(out.pending, at).toBe(1);
}

describe("WaitQueue", () => {
  it("holds records behind the hot ones deflated, and gives back each one as it went in", () => {
    const q = new WaitQueue(1_000, Number.POSITIVE_INFINITY);
    q.setPacking(true);
    const a = target("a");
    const want: Expected[] = [];
    for (let i = 0; i < 20_000; i++) {
      const json = logLine(i);
      const e = new Entry(json, Buffer.byteLength(json), a, 5_000_000_000 + i);
      e.pending = 1;
      e.admit(i % 1_000);
      q.push(e);
      want.push({ json, seq: 5_000_000_000 + i, source: a, stamp: i % 1_000 });
    }
    const s = q.stats;
    // Everything past the first 1,000 records, but the tail still filling a block.
    expect(s.records).toBeGreaterThan(18_000);
    expect(q.length).toBe(20_000);
    const raw = want.slice(1_000, 1_000 + s.records).reduce((n, w) => n + Buffer.byteLength(w.json) + 1, 0);
    expect(s.rawBytes).toBe(raw);
    // Log lines of one shape: a fifth of their size at most (level 1 gives about a seventh here).
    expect(s.bytes * 5).toBeLessThan(s.rawBytes);
    for (let i = 0; i < want.length; i++) {
      expect(q.peek()?.seq).toBe(want[i]!.seq);
      expectSame(q.shift()!, want[i]!, `record ${i}`);
    }
    expect(q.shift()).toBeUndefined();
    expect(q.length).toBe(0);
    expect(q.stats).toEqual({ records: 0, bytes: 0, rawBytes: 0, total: s.records });
  });

  it("keeps order and content through random pushes, shifts and emptyings (frames, texts, multi-byte, shared entries)", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const random = mulberry32(seed);
      const rand = (n: number): number => Math.floor(random() * n);
      const sources = [target("a"), target("b"), undefined];
      const { entries, texts } = framedEntries(rand, { frames: 30, perFrame: 300, textOneIn: 7, dropOneIn: 9 });
      const q = new WaitQueue(1 + rand(400), rand(2) === 0 ? Number.POSITIVE_INFINITY : 1 + rand(20_000));
      const model: Expected[] = [];
      let next = 0;
      let out = 0;
      const take = (got: Entry | undefined): void => {
        const want = model.shift();
        expect(got === undefined, `seed ${seed}: got ${got?.json} for ${want?.json}`).toBe(want === undefined);
        if (want !== undefined) expectSame(got!, want, `seed ${seed}, record ${out++}`);
      };
      while (next < entries.length || model.length > 0) {
        const op = rand(10);
        if (op < 6 && next < entries.length) {
          for (let k = rand(500); k > 0 && next < entries.length; k--, next++) {
            const source = sources[rand(3)];
            // Half of them as text, the others in place in their frame, as they came from a collector.
            const f = entries[next]!;
            const pushed =
              rand(2) === 0 || f.frameBuffer === undefined
                ? new Entry(texts[next]!, Buffer.byteLength(texts[next]!), source, next)
                : new Entry(f.frameBuffer, f.bytes, source, next, undefined, f.frameOffset);
            pushed.pending = rand(8) === 0 ? 2 : 1;
            pushed.admit(rand(1_000_000));
            q.push(pushed);
            model.push({ json: texts[next]!, seq: pushed.seq, source: pushed.source, stamp: pushed.stamp, same: pushed.pending === 2 ? pushed : undefined });
          }
        } else if (op < 9) {
          for (let k = rand(600); k > 0; k--) {
            if (rand(4) === 0) expect(q.peek()?.seq).toBe(model[0]?.seq);
            take(q.shift());
          }
        } else if (rand(2) === 0) {
          // The sink stalls (what waits past the hot records is packed, some now, the rest by the lane's timer) or
          // delivers again.
          q.setPacking(!q.packing);
        } else if (rand(2) === 0) {
          q.packSome(1 + rand(8));
        } else if (rand(5) === 0) {
          for (let e = q.shift(); e !== undefined; e = q.shift()) take(e);
          expect(model).toEqual([]);
        }
        expect(q.length, `seed ${seed}`).toBe(model.length);
      }
    }
  });

  it("gives back a block's records as runs of one buffer, so a sink copies them as one span", () => {
    const q = new WaitQueue(0, 0);
    q.setPacking(true);
    const a = target("a");
    const lines = Array.from({ length: 400 }, (_, i) => logLine(i));
    for (let i = 0; i < lines.length; i++) {
      const e = new Entry(lines[i]!, Buffer.byteLength(lines[i]!), a, i);
      e.pending = 1;
      q.push(e);
    }
    expect(q.stats.records).toBeGreaterThan(0);
    const first = q.shift()!;
    let last = first;
    let run = 1;
    for (let e = q.peek(); e !== undefined && e.follows(last); e = q.peek()) {
      last = q.shift()!;
      run++;
    }
    expect(run).toBeGreaterThan(100);
    const span = Buffer.alloc(256 * 1024);
    const end = first.copyRunUtf8(last, span, 0);
    expect(span.toString("utf8", 0, end)).toBe(lines.slice(0, run).join("\n"));
  });

  it("never packs anything with Infinity thresholds (compress off, or a disk queue's read-ahead)", () => {
    const q = new WaitQueue(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
    q.setPacking(true);
    const entries = Array.from({ length: 10_000 }, (_, i) => new Entry(logLine(i), Buffer.byteLength(logLine(i)), undefined, i));
    for (const e of entries) {
      e.pending = 1;
      q.push(e);
    }
    expect(q.stats.records).toBe(0);
    for (const e of entries) expect(q.shift()).toBe(e);
  });
  it("keeps whole a record larger than a block, and one whose text is not the UTF-8 its entry counts", () => {
    const q = new WaitQueue(0, 0);
    q.setPacking(true);
    const a = target("a");
    const big = `{"m":"${"x".repeat(70 * 1024)}"}`;
    // A text decoded from bytes that were not UTF-8: 9 bytes counted, 11 written (U+FFFD takes 3).
    const odd = '{"m":"\uFFFD"}';
    const texts = [logLine(0), big, logLine(1), odd, ...Array.from({ length: 400 }, (_, i) => logLine(i + 2))];
    const entries = texts.map((t, i) => new Entry(t, t === odd ? 9 : Buffer.byteLength(t), a, i));
    for (const e of entries) {
      e.pending = 1;
      q.push(e);
    }
    expect(q.stats.records).toBeGreaterThan(0);
    expect(q.stats.records).toBeLessThan(entries.length - 2);
    for (let i = 0; i < entries.length; i++) {
      const e = q.shift()!;
      expect(e.seq, `record ${i}`).toBe(i);
      if (i === 1 || i === 3) expect(e, `record ${i} kept whole`).toBe(entries[i]);
      else expect(e.json, `record ${i}`).toBe(texts[i]);
    }
  });

  it("packs a block again once the other lane settled the records it shared, and visits kept ones for detaching", () => {
    const q = new WaitQueue(0, 0);
    q.setPacking(true);
    const a = target("a");
    const lines = Array.from({ length: 3_000 }, (_, i) => logLine(i));
    const frame = Buffer.from(lines.join("\n"));
    let at = 0;
    const entries = lines.map((t, i) => {
      const e = new Entry(frame, Buffer.byteLength(t), a, i, undefined, at);
      at += Buffer.byteLength(t) + 1;
      e.pending = 2; // another lane holds it too
      return e;
    });
    for (const e of entries.slice(0, 1_500)) q.push(e);
    expect(q.stats.records).toBe(0);
    let loose = 0;
    q.forEachLoose(() => loose++);
    expect(loose).toBe(1_500);
    // The other lane settles the first 1,500; as more blocks are parked, the settled ones are packed again.
    for (const e of entries.slice(0, 1_500)) e.settleOne();
    for (const e of entries.slice(1_500)) q.push(e);
    const packed = q.stats.records;
    expect(packed).toBeGreaterThan(1_000);
    expect(q.stats.total).toBe(packed);
    for (let i = 0; i < entries.length; i++) {
      const e = q.shift()!;
      expect(e.json, `record ${i}`).toBe(lines[i]);
      expect(e.seq).toBe(i);
      // Packed ones come back as new entries of this lane alone; kept ones as the shared object.
      if (i >= 1_500) expect(e).toBe(entries[i]);
      else expect(e.pending).toBe(1);
    }
  });
  it("packs nothing until told the sink stalled; then a backlog a few blocks at a time, or in front of older blocks", () => {
    const q = new WaitQueue(100, Number.POSITIVE_INFINITY);
    const a = target("a");
    const lines = Array.from({ length: 6_000 }, (_, i) => logLine(i));
    const entries = lines.map((t, i) => new Entry(t, Buffer.byteLength(t), a, i));
    for (const e of entries) e.pending = 1;
    const packAll = (): void => {
      while (q.backlog) q.packSome(16);
    };
    for (const e of entries.slice(0, 2_000)) q.push(e);
    expect(q.stats.records).toBe(0);
    // 1,900 past the hot 100: about six blocks, of which setPacking packs four; the lane's timer packs the rest.
    q.setPacking(true);
    expect(q.stats.records).toBeGreaterThan(0);
    expect(q.backlog).toBe(true);
    packAll();
    expect(q.stats.records).toBeGreaterThan(1_500);
    for (const e of entries.slice(2_000, 3_000)) q.push(e);
    // Delivering again: arrivals are held as they come, behind the blocks.
    q.setPacking(false);
    for (const e of entries.slice(3_000, 6_000)) q.push(e);
    const packed = q.stats.records;
    expect(packed).toBeLessThan(3_000);
    // The hot 100, then a block inflated into the head: more than the hot records there.
    for (let i = 0; i < 101; i++) expect(q.shift()!.seq).toBe(i);
    // Stalled again: the head past the hot records goes in front of the parked blocks; the tail is packed behind them.
    const before = q.stats.records;
    q.setPacking(true);
    packAll();
    expect(q.stats.records).toBeGreaterThan(before + 2_500);
    for (let i = 101; i < entries.length; i++) expect(q.shift()!.json, `record ${i}`).toBe(lines[i]);
    expect(q.length).toBe(0);
  });
});
