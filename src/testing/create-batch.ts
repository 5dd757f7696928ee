// Build a Batch by hand, for unit tests of custom sinks (the engine builds them from its queues otherwise).
import { type AckTarget, Entry } from "../pipeline/entry.js";
import { EntryBatch } from "../pipeline/batch.js";
import type { LogRecordInput } from "../record.js";
import type { Batch } from "../sinks/sink.js";
import { serializeRecord } from "../pipeline/serialize.js";
import { InvalidOptionError } from "../errors.js";

export interface CreateBatchOptions {
  /** Source name for every record (or one per record). */
  source?: string | readonly (string | undefined)[];
  /** Attempt number the batch reports. @default 1 */
  attempt?: number;
}

/** Make a `Batch` from plain records, filled in and serialized the way the engine does it. */
export function createBatch(records: readonly LogRecordInput[], options: CreateBatchOptions = {}): Batch {
  const entries = records.map((input, i) => {
    const s = serializeRecord(input);
    if (!s.ok) throw new InvalidOptionError(`Record ${i} cannot be serialized: ${s.error.message}`, { cause: s.error });
    const name = typeof options.source === "string" ? options.source : options.source?.[i];
    const target: AckTarget | undefined = name === undefined ? undefined : { name, settle() {} };
    return new Entry(s.json, Buffer.byteLength(s.json), target, i, s.record);
  });
  return new EntryBatch(entries, options.attempt ?? 1);
}
