// waitFor is what every I/O test leans on: it must resolve on the first truthy value and fail with a useful message.
import { afterEach, describe, expect, it, vi } from "vitest";
import { waitFor, WaitForTimeoutError } from "../../../src/testing/wait-for.js";
import { InvalidOptionError } from "../../../src/errors.js";
import { rejectionOf } from "../../helpers/rejection.js";


afterEach(() => {
  vi.useRealTimers();
});

describe("waitFor", () => {
  it("resolves with the first truthy value, retrying on falsy results and on throws", async () => {
    let calls = 0;
    const value = await waitFor(
      () => {
        calls++;
        if (calls === 1) return false;
        if (calls === 2) throw new Error("not yet");
        if (calls === 3) return 0;
        return { calls };
      },
      { interval: 1 },
    );
    expect(value).toEqual({ calls: 4 });
    expect(calls).toBe(4);
  });

  it("awaits async predicates and treats a rejection as not yet", async () => {
    let calls = 0;
    const value = await waitFor(
      async () => {
        calls++;
        if (calls < 3) throw new Error("still missing");
        return "ready";
      },
      { interval: 1 },
    );
    expect(value).toBe("ready");
  });

  it("rejects with a message naming what was missing and the last error", async () => {
    const error = await rejectionOf(
      waitFor(
        () => {
          throw new Error("expected 3 records, got 1");
        },
        { timeout: 30, interval: 5, message: "the sink to hold 3 records" },
      ),
    );
    expect(error).toBeInstanceOf(WaitForTimeoutError);
    const e = error as WaitForTimeoutError;
    expect(e.message).toMatch(/^Timed out after 30 ms waiting for the sink to hold 3 records/);
    expect(e.message).toContain("last error: Error: expected 3 records, got 1");
    expect((e.cause as Error).message).toBe("expected 3 records, got 1");
  });

  it("evaluates a message function at timeout and reports the last falsy value", async () => {
    let state = 0;
    const error = await rejectionOf<WaitForTimeoutError>(
      waitFor(() => (state++, null), {
        timeout: 20,
        interval: 2,
        message: () => `state to be ready (state is ${state > 0 ? "moving" : "idle"})`,
      }),
    );
    expect(error.message).toContain("waiting for state to be ready (state is moving)");
    expect(error.message).toContain("last value: `null`");
    expect(error.lastValue).toBeNull();
  });

  it("times out even when the predicate's promise never settles", async () => {
    const error = await rejectionOf(waitFor(() => new Promise<boolean>(() => {}), { timeout: 20, message: "a hung check" }));
    expect(error).toBeInstanceOf(WaitForTimeoutError);
    expect(error.message).toContain("a hung check");
    expect(error.message).toContain("1 try");
  });

  it("keeps polling on real time under fake timers (the clock is not frozen for it)", async () => {
    vi.useFakeTimers();
    let calls = 0;
    const value = await waitFor(() => ++calls >= 3 && "done", { interval: 1, timeout: 2000 });
    expect(value).toBe("done");
    // And a timeout still fires without anyone advancing the fake clock.
    await expect(waitFor(() => false, { timeout: 15, message: "never" })).rejects.toThrow(/waiting for never/);
  });

  it("times out on real time when fake timers were installed before the library was imported (a setup file), and says they are", async () => {
    vi.useFakeTimers();
    try {
      vi.resetModules();
      const fresh = await import("../../../src/testing/wait-for.js");
      const { MemorySink } = await import("../../../src/sinks/memory.js");
      await expect(fresh.waitFor(() => false, { timeoutMs: 30, message: "never" })).rejects.toThrow(
        /Timed out after 30 ms waiting for never .*fake timers are installed: the engine's batch, retry and deadline timers wait for the fake clock to be advanced/,
      );
      await expect(new MemorySink({ name: "m" }).waitForCount(1, { timeoutMs: 30 })).rejects.toThrow(/within 30 ms, got 0 .*fake timers are installed/);
    } finally {
      vi.useRealTimers();
    }
    // Without fake timers, no such hint.
    await expect(waitFor(() => false, { timeoutMs: 10 })).rejects.toThrow(/^(?!.*fake timers).*Timed out after 10 ms/);
  });

  it("stops early when its signal aborts", async () => {
    const controller = new AbortController();
    const pending = waitFor(() => false, { timeout: 60_000, signal: controller.signal });
    controller.abort(new Error("test over"));
    await expect(pending).rejects.toThrow("test over");
  });

  it("rejects bad options synchronously", () => {
    expect(() => waitFor(() => true, { timeout: -1 })).toThrow(InvalidOptionError);
    expect(() => waitFor(() => true, { timeout: -1 })).toThrow(
      "Expected `timeout` to be a number from 0 to 2147483647 (ms), got `-1` (number)",
    );
    // Longer than a Node timer can wait (it would fire after 1 ms), and Infinity.
    expect(() => waitFor(() => true, { timeout: 2 ** 31 })).toThrow(InvalidOptionError);
    expect(() => waitFor(() => true, { timeout: Infinity })).toThrow(InvalidOptionError);
    expect(() => waitFor(() => true, { interval: 0 })).toThrow("Expected `interval` to be a finite positive number");
    expect(() => waitFor("nope" as unknown as () => boolean)).toThrow("Expected `predicate` to be a function");
  });
});
