// The shared option validators: one naming rule for every source and sink, one wording for every message.
import { describe, expect, it } from "vitest";
import { ElasticsearchSink, GelfSink, LogstashSink, MemorySink } from "../../../src/index.js";
import { intOption, nameOption, requireInt } from "../../../src/util/validate.js";

describe("validate", () => {
  it("applies the aggregator's naming rule in every sink constructor", () => {
    const make = [
      (name: string) => new MemorySink({ name }),
      (name: string) => new GelfSink({ name, url: "udp://127.0.0.1:12201" }),
      (name: string) => new LogstashSink({ name, url: "tcp://127.0.0.1:5000" }),
      (name: string) => new ElasticsearchSink({ name, node: "http://127.0.0.1:9200" }),
    ];
    for (const m of make) {
      expect(() => m("has space")).toThrow(/Expected `name` to be a name of 1–128 letters/);
      expect(() => m("")).toThrow("Expected `name` to be a non-empty string, got `\"\"` (string)");
      expect(m("ok-name.1").name).toBe("ok-name.1");
    }
    expect(nameOption("a:b_c")).toBe("a:b_c");
  });

  it("integers: optional with a fallback, or required, always within bounds", () => {
    expect(intOption("n", undefined, 7, 1, 10)).toBe(7);
    expect(intOption("n", 0, 7, 0, 10)).toBe(0);
    expect(() => intOption("n", 11, 7, 1, 10)).toThrow("Expected `n` to be an integer between 1 and 10, got `11` (number)");
    expect(() => requireInt("n", undefined, 1, 10)).toThrow("got `undefined`");
  });
});
