import { describe, expect, it } from "vitest";
import { Ring } from "../../../src/pipeline/ring.js";

describe("Ring", () => {
  it("is a FIFO across growth and wrap-around", () => {
    const r = new Ring<number>(2);
    const expected: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) {
        r.push(next);
        expected.push(next++);
      }
      for (let i = 0; i < 5; i++) expect(r.shift()).toBe(expected.shift());
    }
    expect(r.length).toBe(expected.length);
    r.unshift(-1);
    expect(r.peek()).toBe(-1);
    expect(r.drain()).toEqual([-1, ...expected]);
    expect(r.length).toBe(0);
    expect(r.shift()).toBeUndefined();
  });

  it("shrinks back to its first capacity when empty after a burst, and only then", () => {
    const r = new Ring<number>(64);
    const slots = () => (r as unknown as { buf: unknown[] }).buf.length;
    for (let i = 0; i < 5_000; i++) r.push(i);
    expect(slots()).toBe(8_192);
    r.shift();
    r.shrinkIfEmpty();
    expect(slots()).toBe(8_192); // not empty: kept
    while (r.length > 1) r.shift();
    expect(r.peek()).toBe(4_999);
    r.shift();
    r.shrinkIfEmpty();
    expect(slots()).toBe(64);
    for (let i = 0; i < 100; i++) r.push(i);
    expect(r.drain()).toEqual(Array.from({ length: 100 }, (_, i) => i));
    r.shrinkIfEmpty();
    expect(slots()).toBe(128); // small growth stays
  });
});
