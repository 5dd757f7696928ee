// createBatch is how users build batches for their own sinks' unit tests: it must build what the engine builds,
// and refuse what the engine could never hand a sink with a clear ERR_INVALID_OPTION instead of a silent oddity.
import { describe, expect, it } from "vitest";
import { createBatch } from "../../../src/testing/create-batch.js";
import { AggregatorError, InvalidOptionError } from "../../../src/errors.js";

const ts = "2024-05-01T10:00:00.000Z";

function thrown(f: () => unknown): AggregatorError {
  try {
    f();
  } catch (error) {
    return error as AggregatorError;
  }
  throw new Error("expected createBatch to throw");
}

describe("createBatch", () => {
  it("builds a batch the way write() fills in and serializes records", () => {
    const batch = createBatch([{ message: "a", "@timestamp": ts }, {}, { message: 5 as never, "@timestamp": "garbage" }]);
    expect(batch.length).toBe(3);
    expect(batch.attempt).toBe(1);
    expect(batch.sources).toEqual([undefined, undefined, undefined]);
    expect(batch.json[0]).toBe(JSON.stringify({ message: "a", "@timestamp": ts }));
    expect(batch.records.map((r) => r.message)).toEqual(["a", "", "5"]);
    // Records without a usable timestamp get the same "now", as the records of one write() call do.
    expect(batch.records[1]!["@timestamp"]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(batch.records[2]!["@timestamp"]).toBe(batch.records[1]!["@timestamp"]);
    expect(batch.bytes).toBe(batch.json.reduce((n, j) => n + Buffer.byteLength(j), 0));
  });

  it("keeps what it cannot use as collectors do: an object message as message_raw, an unreadable @timestamp as @timestamp_raw", () => {
    const batch = createBatch([{ message: { code: 7 } as never, "@timestamp": "yesterday" }, { message: "kept", message_raw: "mine" as never, "@timestamp": "soon" }]);
    expect(batch.records[0]).toMatchObject({ message: "", message_raw: { code: 7 }, "@timestamp_raw": "yesterday" });
    expect(batch.records[0]!["@timestamp"]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(batch.records[1]).toMatchObject({ message: "kept", message_raw: "mine", "@timestamp_raw": "soon" });
  });

  it("ships an Error given as the message as its text, as String() does", () => {
    expect(createBatch([{ message: new TypeError("disk full") as never }]).records[0]).toMatchObject({ message: "TypeError: disk full" });
  });

  it("refuses a Map, a Set or a Promise as a record (they would ship empty), naming what it got", () => {
    for (const [value, name] of [
      [new Map([["a", 1]]), "a Map"],
      [new Set([1]), "a Set"],
      [Promise.resolve({ message: "x" }), "a Promise (await it first)"],
    ] as const) {
      expect(() => createBatch([value as never])).toThrow(new RegExp(`got ${name.replace(/[()]/g, "\\$&")}`));
    }
  });

  it("takes an attempt number and source names", () => {
    expect(createBatch([{ message: "a" }], { attempt: 3 }).attempt).toBe(3);
    expect(createBatch([{ message: "a" }, { message: "b" }], { source: "app" }).sources).toEqual(["app", "app"]);
    expect(createBatch([{ message: "a" }, { message: "b" }], { source: ["app", undefined] }).sources).toEqual(["app", undefined]);
  });

  it("makes an empty batch from an empty list", () => {
    const batch = createBatch([]);
    expect(batch.length).toBe(0);
    expect(batch.json).toEqual([]);
    expect(batch.bytes).toBe(0);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, "x", null])("rejects attempt %s", (attempt) => {
    const error = thrown(() => createBatch([{ message: "a" }], { attempt: attempt as never }));
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error.code).toBe("ERR_INVALID_OPTION");
    expect(error.message).toMatch(/^Expected `attempt` to be a positive integer, got /);
  });

  it("rejects a source that is not a string or one entry per record", () => {
    const cases: Array<[unknown, string]> = [
      [5, "Expected `source` to be a string or an array of strings, got `5` (number)"],
      [null, "Expected `source` to be a string or an array of strings, got `null`"],
      [["app"], "Expected `source` to name one source per record (2), got 1"],
      [["app", "web", "db"], "Expected `source` to name one source per record (2), got 3"],
      [["app", 7], "Expected `source[1]` to be a string or `undefined`, got `7` (number)"],
    ];
    for (const [source, message] of cases) {
      const error = thrown(() => createBatch([{ message: "a" }, { message: "b" }], { source: source as never }));
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error.code).toBe("ERR_INVALID_OPTION");
      expect(error.message).toBe(message);
    }
  });

  it("rejects records that are not an array, and options that are not an object", () => {
    const notArray = thrown(() => createBatch({ message: "a" } as never));
    expect(notArray).toBeInstanceOf(InvalidOptionError);
    expect(notArray.message).toBe("Expected `records` to be an array, got an object");
    const nullOptions = thrown(() => createBatch([{ message: "a" }], null as never));
    expect(nullOptions).toBeInstanceOf(InvalidOptionError);
    expect(nullOptions.message).toBe("Expected `options` to be an object, got `null`");
  });

  it("rejects a record that is not an object or cannot be serialized, naming its index", () => {
    const bigint = thrown(() => createBatch([{ message: "a" }, { message: "b", n: 1n } as never]));
    expect(bigint).toBeInstanceOf(InvalidOptionError);
    expect(bigint.code).toBe("ERR_INVALID_OPTION");
    expect(bigint.message).toMatch(/^Record 1 cannot be serialized: /);
    expect(bigint.cause).toBeInstanceOf(TypeError);
    expect(thrown(() => createBatch([null as never])).message).toBe("Record 0 cannot be serialized: Expected a record object, got `null`");
    // A hole in a sparse array is a missing record, not a skipped one.
    expect(thrown(() => createBatch([{ message: "a" }, , { message: "c" }] as never)).message).toBe(
      "Record 1 cannot be serialized: Expected a record object, got `undefined`",
    );
  });
});
