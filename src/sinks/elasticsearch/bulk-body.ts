// The NDJSON body of one bulk request as bytes: `action\nrecord\n` per record (actions end in `\n`), in one buffer.
// Records from collectors are already UTF-8 (held in their channel frames), so nothing is decoded or
// re-encoded here; records written as text are encoded once, in place. Action lines repeat (one index, no ids):
// each distinct one is encoded once per body.
import { EntryBatch } from "../../pipeline/batch.js";
import type { Entry } from "../../pipeline/entry.js";
import type { Batch } from "../sink.js";

/** Each record's action line by batch position, or one line for every record. */
export type BulkActions = string | readonly (string | undefined)[];

/**
 * The body for `included[lo..hi)`: the batch positions whose `actions` are set. `alloc` supplies the buffer for a
 * body of `size` bytes (the sink reuses the buffers of answered requests); the body is exactly `size` long.
 */
export function bulkBody(
  batch: Batch,
  actions: BulkActions,
  included: Int32Array,
  lo: number,
  hi: number,
  alloc: (size: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  const entries = batch instanceof EntryBatch ? batch.entries : undefined;
  const texts = entries === undefined ? batch.json : undefined;
  const each = typeof actions === "string" ? undefined : actions;
  const one = typeof actions === "string" ? actions : undefined;
  let size = 0;
  let last: string | undefined;
  let lastBytes = 0;
  for (let k = lo; k < hi; k++) {
    const i = included[k]!;
    const action = one ?? each![i]!;
    if (action !== last) {
      last = action;
      lastBytes = Buffer.byteLength(action);
    }
    size += lastBytes + 1 + (entries !== undefined ? entries[i]!.bytes : Buffer.byteLength(texts![i]!));
  }
  const out = alloc(size);
  let pos = 0;
  last = undefined;
  let lastBuf: Buffer | undefined;
  for (let k = lo; k < hi; ) {
    const i = included[k]!;
    const action = one ?? each![i]!;
    if (action !== last) {
      last = action;
      lastBuf = Buffer.from(action);
    }
    if (entries !== undefined) {
      // A run: the next records under the same action that follow each other in one frame.
      let m = k + 1;
      while (m < hi && (one !== undefined || each![included[m]!] === action) && entries[included[m]!]!.follows(entries[included[m - 1]!]!)) m++;
      if (m - k > 1) {
        pos = spreadRun(entries, included, k, m, lastBuf!, out, pos);
        k = m;
        continue;
      }
    }
    out.set(lastBuf!, pos);
    pos += lastBuf!.length;
    if (entries !== undefined) pos = entries[i]!.copyUtf8(out, pos);
    else pos += out.write(texts![i]!, pos);
    out[pos++] = 10;
    k++;
  }
  // A record's `bytes` disagreeing with its text would leave garbage or cut a record: never send that.
  if (pos !== size) throw new Error(`bulk body size mismatch: wrote ${pos} of ${size} bytes`);
  return out;
}

/**
 * Write `action\nrecord\n` for the run `included[k..m)` at `pos`. The run's records lie back to back in one frame
 * (`record\nrecord…`), so the span is copied once, right after the first action, and each record then moves right
 * by one action length per record before it (last first, inside `out`), leaving the gaps the actions fill. A ranged
 * Buffer#copy allocates a view per call; copyWithin and set do not.
 */
function spreadRun(entries: readonly Entry[], included: Int32Array, k: number, m: number, action: Buffer, out: Buffer, pos: number): number {
  const a = action.length;
  const first = entries[included[k]!]!;
  const lastEntry = entries[included[m - 1]!]!;
  const base = first.frameOffset;
  const at = pos + a;
  first.copyRunUtf8(lastEntry, out, at);
  // Record j (j = 0 for the first) now starts at `at + (its frame offset - base)` and belongs `j * a` further right.
  const end = at + (lastEntry.frameOffset - base) + (m - 1 - k) * a + lastEntry.bytes;
  out[end] = 10;
  for (let j = m - 1 - k; j > 0; j--) {
    const e = entries[included[k + j]!]!;
    const from = at + (e.frameOffset - base);
    const to = from + j * a;
    // A record and the `\n` after it (the last one's was written above).
    out.copyWithin(to, from, from + e.bytes + (j === m - 1 - k ? 0 : 1));
    out.set(action, to - a);
  }
  out.set(action, pos);
  return end + 1;
}
