import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../../src/pipeline/backoff.js";
import { DEFAULT_RETRY } from "../../../src/options.js";

describe("backoffDelay", () => {
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 500, maxDelayMs: 30_000, factor: 2 };

  it("uses full jitter under an exponential ceiling", () => {
    expect(backoffDelay(1, policy, undefined, () => 0.999999)).toBe(499);
    expect(backoffDelay(2, policy, undefined, () => 0.999999)).toBe(999);
    expect(backoffDelay(3, policy, undefined, () => 0.5)).toBe(1000);
    expect(backoffDelay(4, policy, undefined, () => 0)).toBe(0);
  });

  it("never exceeds the cap, however many attempts", () => {
    for (let a = 1; a < 200; a++) expect(backoffDelay(a, policy, undefined, () => 0.999999)).toBeLessThan(30_000);
  });

  it("treats Retry-After as a floor, clamped to maxRetryAfterMs", () => {
    expect(backoffDelay(1, policy, 7_000, () => 0.1)).toBe(7_000);
    expect(backoffDelay(12, policy, 100, () => 0.9)).toBe(Math.floor(0.9 * 30_000));
    expect(backoffDelay(1, { ...policy, maxRetryAfterMs: 60_000 }, 3_600_000, () => 0)).toBe(60_000);
  });
});
