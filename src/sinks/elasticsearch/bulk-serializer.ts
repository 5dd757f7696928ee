// The client's JSON deserializer, with a shortcut for the answer a healthy cluster gives almost every time: a bulk
// response under the sink's filter_path with no errors, `{"errors":false,"items":[{"create":{"status":201}},…]}`.
// Parsing that generically costs two objects per document plus secure-json-parse's prototype scan (the largest
// single cost in the host at high rates). The shortcut reads it as a run of known item texts and answers one
// shared, frozen item object per distinct text: the same values JSON.parse gives, so the item-by-item judgement
// in bulk-response.ts is unchanged. When every item is the same text, the answer is that item and a count
// (UniformBulkAnswer), which the sink takes as a whole. Any other text, however slightly different, goes to the
// stock deserializer.
import type { Serializer } from "@elastic/elasticsearch";

const HEAD = '{"errors":false,"items":[';
const TAIL = "]}";
/** Item texts the shortcut knows, and the object each stands for. */
const KNOWN: ReadonlyArray<readonly [string, object]> = (["create", "index"] as const).flatMap((op) =>
  [201, 200].map((status): readonly [string, object] => [
    `{"${op}":{"status":${status}}}`,
    Object.freeze({ [op]: Object.freeze({ status }) }),
  ]),
);

/** Per known item: the whole answer made of that item only (one native regex pass checks all of it). */
const UNIFORM = KNOWN.map(([text, item]) => ({
  text,
  item,
  whole: new RegExp(`^${escapeRegExp(HEAD)}(?:${escapeRegExp(text)},)*${escapeRegExp(text)}${escapeRegExp(TAIL)}$`),
}));

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * An answer of `count` identical items, `item` each. The sink judges it as a whole; the `items` array JSON.parse
 * would give is made only if something asks for it (a range of a batch that was split, or rejected records left
 * out). Per batch of 5,000 that saves a 40 KB array, which lives until the answer is judged and so is often promoted.
 */
export class UniformBulkAnswer {
  readonly errors = false;
  constructor(
    readonly item: object,
    readonly count: number,
  ) {}

  get items(): object[] {
    return new Array<object>(this.count).fill(this.item);
  }
}

/** The parsed form of a uniform all-success filtered bulk answer, or `undefined` for anything else. */
export function parseUniformBulk(json: string): UniformBulkAnswer | { errors: false; items: object[] } | undefined {
  if (!json.startsWith(HEAD) || !json.endsWith(TAIL)) return undefined;
  const end = json.length - TAIL.length;
  let pos = HEAD.length;
  if (pos === end) return { errors: false, items: [] };
  // Usually every item is the same text: the count follows from the length once the regex vouched for the shape.
  for (const u of UNIFORM) {
    if (json.startsWith(u.text, pos) && u.whole.test(json)) {
      const n = (end - pos + 1) / (u.text.length + 1);
      return new UniformBulkAnswer(u.item, n);
    }
  }
  const items: object[] = [];
  let known = KNOWN[0]!;
  for (;;) {
    if (!json.startsWith(known[0], pos)) {
      const other = KNOWN.find(([text]) => json.startsWith(text, pos));
      if (other === undefined) return undefined;
      known = other;
    }
    items.push(known[1]);
    pos += known[0].length;
    if (pos === end) return { errors: false, items };
    if (json.charCodeAt(pos) !== 44 /* , */) return undefined;
    pos++;
  }
}

let bulkAware: typeof Serializer | undefined;

/**
 * The client's Serializer with the shortcut, made from the client module's own class (the module is loaded on
 * demand, see ElasticsearchSink), once.
 */
export function bulkAwareSerializer(base: typeof Serializer): typeof Serializer {
  if (bulkAware === undefined) {
    bulkAware = class BulkAwareSerializer extends base {
      override deserialize<T = unknown>(json: string): T {
        return (parseUniformBulk(json) as T | undefined) ?? super.deserialize<T>(json);
      }
    };
  }
  return bulkAware;
}
