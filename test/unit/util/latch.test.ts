import { describe, expect, it } from "vitest";
import { Latch } from "../../../src/util/latch.js";

describe("Latch", () => {
  it("race() settles like its promise and leaves no waiter behind once that settled", async () => {
    const latch = new Latch();
    for (let i = 0; i < 1000; i++) await latch.race(Promise.resolve(i));
    await expect(latch.race(Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    // A promise.race against a pending promise would have left 1001 reactions on it.
    expect(latch.waiting).toBe(0);
  });

  it("race() resolves when the latch fires first, and at once after it fired", async () => {
    const latch = new Latch();
    const never = new Promise<void>(() => undefined);
    const raced = latch.race(never);
    expect(latch.waiting).toBe(1);
    latch.fire();
    await expect(raced).resolves.toBeUndefined();
    expect(latch.waiting).toBe(0);
    await expect(latch.race(never)).resolves.toBeUndefined();
    expect(latch.done).toBe(true);
  });

  it("onFire() calls once, can be cancelled, and calls at once after the latch fired", () => {
    const latch = new Latch();
    const calls: string[] = [];
    latch.onFire(() => calls.push("a"));
    const off = latch.onFire(() => calls.push("b"));
    off();
    latch.fire();
    latch.fire();
    latch.onFire(() => calls.push("late"));
    expect(calls).toEqual(["a", "late"]);
  });
});
