// Error classes: each code has one documented class (the README's error table), and the factory that makes errors
// for codes known only at run time returns exactly that class. Table-driven, like undici's test/errors.js.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, errorForCode, isErrorCode } from "../../src/errors.js";
import * as lib from "../../src/index.js";

const { AggregatorError, SinkError, StateError } = lib;
type ErrorClass = typeof lib.AggregatorError;

/** `code → class` as the README's "Error codes" table documents it. */
function documentedClasses(): Map<string, string> {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Error codes"), readme.indexOf("\n## ", readme.indexOf("## Error codes") + 1));
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| `(ERR_[A-Z_]+)` \| `(\w+)` \|/gm)) rows.set(m[1]!, m[2]!);
  return rows;
}

const documented = documentedClasses();

/** The library's error classes as exported: every export whose prototype chain reaches AggregatorError's. */
const exportedClasses = Object.entries(lib).filter(
  ([name, value]) => name !== "AggregatorError" && typeof value === "function" && value.prototype instanceof AggregatorError,
);

describe("error classes", () => {
  it("the README documents a class for exactly the codes the factory knows", () => {
    expect(documented.size, "no row of the README's error table was recognised").toBeGreaterThan(0);
    expect([...documented.keys()].sort()).toEqual([...ERROR_CODES].sort());
  });

  it("every exported error class is the class of some documented code", () => {
    expect(exportedClasses.map(([name]) => name).sort()).toEqual([...new Set(documented.values())].sort());
  });

  it.each([...documented])("errorForCode(%s) is a %s", (code, className) => {
    const Class = (lib as unknown as Record<string, ErrorClass>)[className];
    expect(Class, `${className} is not exported from src/index.ts`).toBeTypeOf("function");
    const cause = new Error("underlying");
    expect(isErrorCode(code)).toBe(true);
    const error = errorForCode(code as lib.ErrorCode, "what happened", { cause, source: "src", sink: "snk" });
    expect(error).toBeInstanceOf(Class);
    expect(error).toBeInstanceOf(AggregatorError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code, name: className, message: "what happened", cause, source: "src", sink: "snk" });
  });

  it("a code from elsewhere is ours only when the table has it", () => {
    for (const value of ["ERR_NOT_A_CODE", "toString", "__proto__", "", 1, undefined, null]) expect(isErrorCode(value)).toBe(false);
  });

  it("instanceof AggregatorError is a brand check (another copy of the library); a subclass's is not", () => {
    // What another installed copy's errors look like to this one: another class, with the same Symbol.for brand.
    class ForeignSinkError extends Error {
      readonly code = "ERR_SINK_SEND";
      get [Symbol.for("child-log-agg.error")](): true {
        return true;
      }
    }
    const foreign = new ForeignSinkError("elsewhere");
    expect(foreign).toBeInstanceOf(AggregatorError);
    expect(foreign).not.toBeInstanceOf(SinkError);
    expect(new Error("plain")).not.toBeInstanceOf(AggregatorError);
    expect(new StateError("ERR_INVALID_STATE", "x")).not.toBeInstanceOf(SinkError);
  });

  it("a SinkError takes retryable, statusCode and retryAfterMs as options (a custom sink's permanent failure in one expression)", () => {
    expect(new SinkError("ERR_SINK_REJECTED", "no", { retryable: false, statusCode: 422, retryAfterMs: 5, sink: "s" })).toMatchObject({
      retryable: false,
      statusCode: 422,
      retryAfterMs: 5,
      sink: "s",
    });
    const plain = new SinkError("ERR_SINK_SEND", "again");
    expect(plain.retryable).toBe(true);
    expect([plain.statusCode, plain.retryAfterMs]).toEqual([undefined, undefined]);
  });

  it("from JavaScript, a code that is not a SinkError's becomes ERR_SINK_SEND (the text kept), and a falsy retryable is false", () => {
    const bare = new (SinkError as unknown as new (code: string, message?: string, options?: object) => InstanceType<typeof SinkError>)("connection refused");
    expect([bare.code, bare.message]).toEqual(["ERR_SINK_SEND", "connection refused"]);
    const foreign = new SinkError("ERR_INVALID_OPTION" as never, "not a sink's code");
    expect([foreign.code, foreign.message]).toEqual(["ERR_SINK_SEND", "not a sink's code"]);
    expect(new SinkError("ERR_SINK_AUTH", "x").code).toBe("ERR_SINK_AUTH");
    expect(new SinkError("ERR_SINK_SEND", "x", { retryable: 0 as never }).retryable).toBe(false);
    expect(new SinkError("ERR_SINK_SEND", "x", { retryable: 1 as never }).retryable).toBe(true);
  });
});
