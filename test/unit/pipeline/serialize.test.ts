// withErrorsAsJson: what write() and a script collector's emit() both apply to a record's top-level fields.
import { describe, expect, it } from "vitest";
import { withErrorsAsJson } from "../../../src/pipeline/serialize.js";

describe("withErrorsAsJson", () => {
  it("returns the same object when no top-level field holds an Error, and looks no deeper", () => {
    const nested = { message: "m", inner: { error: new Error("deep") } };
    expect(withErrorsAsJson(nested)).toBe(nested);
  });

  it("converts a copy: message to the error's text, any other field to ECS's error fields; the caller's object stays", () => {
    const boom = new RangeError("boom");
    const fields = { message: boom, error: boom, n: 1 };
    const out = withErrorsAsJson(fields);
    expect(out).not.toBe(fields);
    expect(out).toEqual({ message: "RangeError: boom", error: { type: "RangeError", message: "boom", stack_trace: boom.stack }, n: 1 });
    expect(fields.message).toBe(boom);
    expect(fields.error).toBe(boom);
  });
});
