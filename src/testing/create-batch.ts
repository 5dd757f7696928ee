// Build a Batch by hand, for unit tests of custom sinks (the engine builds them from its queues otherwise).
import { type AckTarget, Entry } from "../pipeline/entry.js";
import { EntryBatch } from "../pipeline/batch.js";
import type { LogRecordInput } from "../record.js";
import type { Batch } from "../sinks/sink.js";
import { describe, serializeRecord } from "../pipeline/serialize.js";
import { InvalidOptionError } from "../errors.js";
import { checkInt, checkObject } from "../util/validate.js";

export interface CreateBatchOptions {
  /** Source name for every record, or one per record (as many entries as records; `undefined` for none). */
  source?: string | readonly (string | undefined)[];
  /** Attempt number the batch reports: an integer ≥ 1. @default 1 */
  attempt?: number;
}

/**
 * Make a `Batch` from plain records, filled in and serialized the way `Aggregator.write()` does it (a missing
 * `message` becomes `""`, a missing or unparsable `@timestamp` becomes now). An empty list makes an empty batch,
 * which the engine itself never sends.
 *
 * Throws `InvalidOptionError` (`ERR_INVALID_OPTION`) for a record that is not an object or cannot be serialized
 * (cycles, BigInt), and for a bad `records`, `source` or `attempt`.
 */
export function createBatch(records: readonly LogRecordInput[], options: CreateBatchOptions = {}): Batch {
  if (!Array.isArray(records)) throw new InvalidOptionError(`Expected \`records\` to be an array, got ${describe(records)}`);
  checkObject("options", options);
  checkInt("attempt", options.attempt, 1);
  const sources = sourceNames(options.source, records.length);
  const now = new Date().toISOString();
  const entries = new Array<Entry>(records.length);
  for (let i = 0; i < records.length; i++) {
    const s = serializeRecord(records[i]!, now);
    if (!s.ok) throw new InvalidOptionError(`Record ${i} cannot be serialized: ${s.error.message}`, { cause: s.error });
    const name = typeof sources === "string" ? sources : sources?.[i];
    const target: AckTarget | undefined = name === undefined ? undefined : { name, settle() {} };
    entries[i] = new Entry(s.json, Buffer.byteLength(s.json), target, i, s.record);
  }
  return new EntryBatch(entries, options.attempt ?? 1);
}

function sourceNames(source: unknown, n: number): string | readonly (string | undefined)[] | undefined {
  if (source === undefined || typeof source === "string") return source;
  if (!Array.isArray(source)) {
    throw new InvalidOptionError(`Expected \`source\` to be a string or an array of strings, got ${describe(source)}`);
  }
  // A list of another length is a slip in the test: filling the gap with "no source" would hide it.
  if (source.length !== n) {
    throw new InvalidOptionError(`Expected \`source\` to name one source per record (${n}), got ${source.length}`);
  }
  for (let i = 0; i < n; i++) {
    const name: unknown = source[i];
    if (name !== undefined && typeof name !== "string") {
      throw new InvalidOptionError(`Expected \`source[${i}]\` to be a string or \`undefined\`, got ${describe(name)}`);
    }
  }
  return source as readonly (string | undefined)[];
}
