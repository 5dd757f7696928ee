// The shortcut for all-success bulk answers must give exactly what JSON.parse gives, or step aside.
import { Serializer, errors } from "@elastic/elasticsearch";
import { describe, expect, it } from "vitest";
import { UniformBulkAnswer, bulkAwareSerializer, parseUniformBulk } from "../../../src/sinks/elasticsearch/bulk-serializer.js";
import { applyFilterPath } from "../../helpers/fake-elasticsearch.js";

const item = (op: string, status: number): string => `{"${op}":{"status":${status}}}`;
const answer = (items: string[]): string => `{"errors":false,"items":[${items.join(",")}]}`;
/** What code reading the answer sees (a uniform answer makes its `items` array when asked, through a getter). */
const asRead = (x: unknown): unknown => {
  const a = x as { errors: unknown; items: unknown } | undefined;
  return a === undefined ? a : { errors: a.errors, items: a.items };
};

describe("parseUniformBulk", () => {
  it("reads uniform and mixed success answers to the same values as JSON.parse", () => {
    const cases = [
      answer([]),
      answer([item("create", 201)]),
      answer(Array.from({ length: 5000 }, () => item("create", 201))),
      answer([item("index", 201), item("index", 200), item("index", 201), item("create", 201), item("create", 200)]),
    ];
    for (const text of cases) {
      const fast = parseUniformBulk(text);
      expect(fast, text.slice(0, 80)).toBeDefined();
      expect(asRead(fast)).toEqual(JSON.parse(text));
    }
  });

  it("answers a uniform run as one item and a count, and a mixed one as an array", () => {
    const uniform = parseUniformBulk(answer(Array.from({ length: 5000 }, () => item("index", 200))));
    expect(uniform).toBeInstanceOf(UniformBulkAnswer);
    expect(uniform).toMatchObject({ errors: false, count: 5000, item: { index: { status: 200 } } });
    const mixed = parseUniformBulk(answer([item("create", 201), item("create", 200)]));
    expect(mixed).not.toBeInstanceOf(UniformBulkAnswer);
    expect(mixed).toEqual(JSON.parse(answer([item("create", 201), item("create", 200)])));
  });

  it("steps aside for anything else: errors, other statuses, other shapes, extra fields, whitespace, truncation", () => {
    const others = [
      `{"errors":true,"items":[${item("create", 201)},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}]}`,
      answer([item("create", 201), item("create", 429)]),
      answer([item("create", 201), item("delete", 200)]),
      answer([`{"create":{"_index":"a","status":201}}`]),
      `{"took":3,"errors":false,"items":[${item("create", 201)}]}`,
      `{"errors":false,"items":[${item("create", 201)}, ${item("create", 201)}]}`,
      `{"errors":false,"items":[${item("create", 201)},]}`,
      `{"errors":false,"items":[${item("create", 201)}${item("create", 201)}]}`,
      `{"errors":false,"items":[${item("create", 201)}]`,
      `{"errors":false,"items":[${item("create", 201)}]} `,
      `{"errors":false,"items":[{"create":{"status":2010}}]}`,
      `{"errors":false,"items":[{"create":{"status":201}}]}x]}`,
      // a long uniform run with one damaged item in the middle, and one with an item missing its comma
      answer(Array.from({ length: 999 }, (_, i) => (i === 500 ? '{"create":{"status":201}' : item("create", 201)))),
      answer(Array.from({ length: 999 }, () => item("create", 201))).replace("}},{", "}}{"),
    ];
    for (const text of others) expect(parseUniformBulk(text), text).toBeUndefined();
  });

  it("hands out frozen shared items, so nothing downstream can alter another document's answer", () => {
    const fast = parseUniformBulk(answer([item("create", 201), item("create", 201)]))!;
    expect(fast.items[0]).toBe(fast.items[1]);
    expect(Object.isFrozen(fast.items[0])).toBe(true);
    expect(Object.isFrozen((fast.items[0] as { create: object }).create)).toBe(true);
  });
});

describe("BulkAwareSerializer", () => {
  it("deserializes everything else exactly like the client's own serializer, errors included", () => {
    const BulkAware = bulkAwareSerializer(Serializer);
    expect(bulkAwareSerializer(Serializer)).toBe(BulkAware); // made once
    const ours = new BulkAware();
    const stock = new Serializer();
    expect(asRead(ours.deserialize(answer([item("create", 201)])))).toEqual({ errors: false, items: [{ create: { status: 201 } }] });
    for (const text of [
      `{"errors":true,"items":[{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"bad"}}}]}`,
      '{"name":"node-1","version":{"number":"9.1.0"},"tagline":"You Know, for Search"}',
      '{"__proto__":{"polluted":true},"a":1}',
    ]) {
      expect(ours.deserialize(text)).toEqual(stock.deserialize(text));
    }
    expect(() => ours.deserialize("{not json")).toThrow(errors.DeserializationError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("the fake cluster's filter_path (what the integration tests' answers go through)", () => {
  const full = {
    took: 3,
    errors: true,
    items: [
      { create: { _index: "a", _id: "1", status: 201, result: "created" } },
      { create: { _index: "a", _id: "2", status: 429, error: { type: "es_rejected_execution_exception", reason: "busy" } } },
    ],
  };

  it("keeps errors and every item's status and error under the sink's filter, and the result reads like ES's", () => {
    const filtered = applyFilterPath(full, "errors,items.*.status,items.*.error");
    expect(filtered).toEqual({
      errors: true,
      items: [{ create: { status: 201 } }, { create: { status: 429, error: { type: "es_rejected_execution_exception", reason: "busy" } } }],
    });
    const ok = applyFilterPath({ took: 1, errors: false, items: [full.items[0]] }, "errors,items.*.status,items.*.error");
    expect(asRead(parseUniformBulk(JSON.stringify(ok)))).toEqual(ok);
  });

  it("drops successful items under `items.*.error` alone: the positional-matching pitfall is reproduced", () => {
    expect(applyFilterPath(full, "items.*.error")).toEqual({ items: [{ create: { error: full.items[1]!.create.error } }] });
  });
});
