// A script collector's committed cursors waiting for the host's ACK: "cursor `json` may be written once every record
// below `seq` is settled". One is added per commit() that follows an emit, in seq order.
//
// While one record stays unsettled (an item the sink retries without end), every cursor after it waits, and a script
// that commits per page or per record keeps committing: that grew without bound. Past `cap` cursors, a new one
// replaces the newest: cursors are then written in coarser steps, never ahead of a record that is not settled.

/** Cursors kept before a new one replaces the newest. */
export const MAX_PENDING_CURSORS = 4096;

export class PendingCursors {
  /** By ascending seq. */
  private waiting: Array<{ seq: number; json: string }> = [];
  /** Every seq below this is settled (the host's last ACK). */
  private settled = -1;

  constructor(private readonly cap = MAX_PENDING_CURSORS) {}

  get length(): number {
    return this.waiting.length;
  }

  /**
   * `json` may be written once every record below `seq` (the seq the next record gets) is settled. Returns the
   * cursor that may be written now, if any.
   */
  add(seq: number, json: string): string | undefined {
    const last = this.waiting[this.waiting.length - 1];
    // The same place (nothing emitted since the last commit), or the cap: the newest cursor moves on. A larger seq
    // only makes it wait longer, so nothing is written early.
    if (last !== undefined && (last.seq === seq || this.waiting.length >= this.cap)) {
      last.seq = seq;
      last.json = json;
    } else this.waiting.push({ seq, json });
    return this.settle(this.settled);
  }

  /** Every record below `seq` is settled: the newest cursor this makes safe to write, if any. */
  settle(seq: number): string | undefined {
    if (seq > this.settled) this.settled = seq;
    let n = 0;
    while (n < this.waiting.length && this.waiting[n]!.seq <= this.settled) n++;
    return n > 0 ? this.waiting.splice(0, n)[n - 1]!.json : undefined;
  }
}
