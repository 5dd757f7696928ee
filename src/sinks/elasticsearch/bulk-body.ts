// The NDJSON body of one bulk request as bytes: `action\nrecord\n` per record (actions end in `\n`), in one buffer.
// Records from collectors are already UTF-8 (held in their channel frames), so nothing is decoded or
// re-encoded here; records written as text are encoded once, in place. Action lines repeat (one index, no ids):
// each distinct one is encoded once per body.
import { EntryBatch } from "../../pipeline/batch.js";
import type { Batch } from "../sink.js";

/** The body for `included[lo..hi)`: the batch positions whose `actions` are set. */
export function bulkBody(batch: Batch, actions: readonly (string | undefined)[], included: Int32Array, lo: number, hi: number): Buffer {
  const entries = batch instanceof EntryBatch ? batch.entries : undefined;
  const texts = entries === undefined ? batch.json : undefined;
  let size = 0;
  let last: string | undefined;
  let lastBytes = 0;
  for (let k = lo; k < hi; k++) {
    const i = included[k]!;
    const action = actions[i]!;
    if (action !== last) {
      last = action;
      lastBytes = Buffer.byteLength(action);
    }
    size += lastBytes + 1 + (entries !== undefined ? entries[i]!.bytes : Buffer.byteLength(texts![i]!));
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  last = undefined;
  let lastBuf: Buffer | undefined;
  for (let k = lo; k < hi; k++) {
    const i = included[k]!;
    const action = actions[i]!;
    if (action !== last) {
      last = action;
      lastBuf = Buffer.from(action);
    }
    pos += lastBuf!.copy(out, pos);
    if (entries !== undefined) pos = entries[i]!.copyUtf8(out, pos);
    else pos += out.write(texts![i]!, pos);
    out[pos++] = 10;
  }
  // A record's `bytes` disagreeing with its text would leave garbage or cut a record: never send that.
  if (pos !== size) throw new Error(`bulk body size mismatch: wrote ${pos} of ${size} bytes`);
  return out;
}
