import { describe, expect, it } from "vitest";
import { Slice } from "../../../src/pipeline/slice.js";

describe("Slice", () => {
  it("is spent after its length within one turn of the loop, and starts again in the next", async () => {
    let now = 100;
    const slice = new Slice(4, () => now);
    expect(slice.spent()).toBe(false); // starts the slice
    now += 3.9;
    expect(slice.spent()).toBe(false);
    now += 0.1;
    expect(slice.spent()).toBe(true);
    now += 50;
    expect(slice.spent()).toBe(true);
    await new Promise((resolve) => setImmediate(resolve)); // the turn's check phase ends it
    expect(slice.spent()).toBe(false);
    now += 4;
    expect(slice.spent()).toBe(true);
  });
});
