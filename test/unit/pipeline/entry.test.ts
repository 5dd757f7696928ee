// Entry keeps its admission time as a small integer modulo 2^30 ms; reading it back must give the time set.
import { afterEach, describe, expect, it, vi } from "vitest";
import { Entry } from "../../../src/pipeline/entry.js";

afterEach(() => {
  vi.useRealTimers();
});

const entry = (): Entry => new Entry(Buffer.from('x{"a":1}y'), 7, undefined, 0, undefined, 1);

describe("Entry.admittedAt", () => {
  it.each([
    ["now", 0],
    ["the epoch start", -Date.now()],
    ["one wrap from now", 2 ** 30],
    ["years from now", 5 * 365 * 86_400_000],
  ])("reads back the time it was set to, for ages up to 12 days (clock at %s)", (_name, offset) => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.now() + offset;
    vi.setSystemTime(t0);
    const e = entry();
    e.admittedAt = t0;
    // The router's way: one stamp per turn, the same for every entry it admits.
    const stamped = entry();
    stamped.admit(Entry.admitStamp(t0));
    for (const age of [0, 1, 999, 60_000, 86_400_000, 12 * 86_400_000]) {
      vi.setSystemTime(t0 + age);
      expect(e.admittedAt, `age ${age} ms`).toBe(t0);
      expect(stamped.admittedAt, `stamped, age ${age} ms`).toBe(t0);
    }
  });

  it("an entry older than 2^30 ms reads as admitted that much later (a flush due anyway, never an earlier one)", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.now();
    const e = entry();
    e.admittedAt = t0;
    vi.setSystemTime(t0 + 2 ** 30 + 500);
    expect(e.admittedAt).toBe(t0 + 2 ** 30);
  });

  it("keeps the record's bytes where they are", () => {
    const e = entry();
    expect(e.json).toBe('{"a":1}');
    expect(e.frameOffset).toBe(1);
    expect(e.record).toEqual({ a: 1 });
  });

  it("releaseDecoded() lets go of the parsed record and of text its frame still holds; both come back on demand", () => {
    const framed = entry();
    const parsed = framed.record;
    framed.releaseDecoded();
    const internals = framed as unknown as { rec: unknown; text: unknown };
    expect([internals.rec, internals.text]).toEqual([undefined, undefined]);
    expect(framed.record).toEqual({ a: 1 });
    expect(framed.record).not.toBe(parsed);
    expect(framed.json).toBe('{"a":1}');
    // Text is all a written record has: it stays.
    const written = new Entry('{"b":2}', 7, undefined, 0, { b: 2 } as never);
    written.releaseDecoded();
    expect((written as unknown as { rec: unknown; text: unknown }).text).toBe('{"b":2}');
    expect(written.record).toEqual({ b: 2 });
  });
});
