// The bulk body is built as bytes: records that arrived as UTF-8 are copied, records written as text are encoded.
// Either way it must equal the NDJSON text the actions and records spell, byte for byte.
import { describe, expect, it } from "vitest";
import { Entry } from "../../../src/pipeline/entry.js";
import { EntryBatch } from "../../../src/pipeline/batch.js";
import { bulkBody } from "../../../src/sinks/elasticsearch/bulk-body.js";
import { framedEntries } from "../../helpers/frame-entries.js";
import type { Batch } from "../../../src/sinks/sink.js";

const texts = [
  '{"message":"plain"}',
  '{"message":"Grüße 😀 日本語","n":1}',
  '{"message":"' + "é".repeat(5000) + '"}',
  '{"message":"\\u0000 escaped","a":[1,2,{"b":null}]}',
  '{"message":"last"}',
];
const actions = ['{"create":{"_index":"a"}}\n', '{"create":{"_index":"a"}}\n', '{"create":{"_index":"ü"}}\n', '{"create":{"_index":"a","_id":"x"}}\n', '{"create":{"_index":"a"}}\n'];
const expected = (idx: number[]): string => idx.map((i) => actions[i]! + texts[i]! + "\n").join("");

describe("bulkBody", () => {
  it("copies records that arrived as bytes and encodes those written as text, to the same NDJSON", () => {
    // Bytes inside a larger frame, as records from a collector arrive.
    const asBytes = (t: string, i: number): Entry => new Entry(Buffer.from(`junk\n${t}\njunk`), Buffer.byteLength(t), undefined, i, undefined, 5);
    const asText = (t: string, i: number): Entry => new Entry(t, Buffer.byteLength(t), undefined, i);
    const mixed = new EntryBatch(texts.map((t, i) => (i % 2 === 0 ? asBytes(t, i) : asText(t, i))), 1);
    const all = Int32Array.from([0, 1, 2, 3, 4]);
    expect(bulkBody(mixed, actions, all, 0, 5).toString()).toBe(expected([0, 1, 2, 3, 4]));
    // A sub-range of the included positions (what a 413 split sends), with a record left out of `included`.
    const some = Int32Array.from([0, 2, 3, 4]);
    expect(bulkBody(mixed, actions, some, 1, 3).toString()).toBe(expected([2, 3]));
    expect(mixed.entries[2]!.hasBytes).toBe(true);
    expect(mixed.entries[1]!.hasBytes).toBe(false);
  });

  it("spreads runs of records that lie back to back in a frame, the same as copying them one by one", () => {
    // Three frames as a collector sends them (records joined by \n after a header), plus records written as text.
    // Seeded choices of which positions are included and of the action per record make runs of every length,
    // broken by frame edges, by gaps, by text entries and by a change of action.
    let seed = 7;
    const rand = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const { entries, texts: textOf } = framedEntries(rand, { frames: 3, perFrame: 40, textOneIn: 10 });
    const batch = new EntryBatch(entries, 1);
    const acts = ['{"create":{}}\n', '{"create":{"_index":"ü"}}\n'];
    for (let round = 0; round < 50; round++) {
      const actionOf = entries.map(() => acts[rand(8) === 0 ? 1 : 0]!);
      const included = Int32Array.from(entries.map((_, i) => i).filter(() => rand(6) !== 0));
      const lo = rand(5);
      const hi = included.length - rand(5);
      const want = Array.from(included.subarray(lo, hi), (i) => actionOf[i]! + textOf[i]! + "\n").join("");
      expect(bulkBody(batch, actionOf, included, lo, hi).toString(), `round ${round}`).toBe(want);
    }
  });

  it("takes any Batch: a custom one without entries is encoded from its texts", () => {
    const plain: Batch = { length: texts.length, json: texts, records: [], sources: [], bytes: 0, attempt: 1 };
    expect(bulkBody(plain, actions, Int32Array.from([4, 1]), 0, 2).toString()).toBe(actions[4]! + texts[4]! + "\n" + actions[1]! + texts[1]! + "\n");
  });

  it("refuses an entry whose byte count disagrees with its text rather than send a torn body", () => {
    const wrong = new EntryBatch([new Entry(texts[1]!, texts[1]!.length, undefined, 0)], 1);
    expect(() => bulkBody(wrong, actions, Int32Array.from([0]), 0, 1)).toThrow(/size mismatch/);
  });
});
