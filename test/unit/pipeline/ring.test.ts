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
});
