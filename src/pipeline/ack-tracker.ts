// Per-source settle watermark: the highest seq below which every record is settled by every sink.
// Sources commit positions (file offsets) only up to the watermark, so a crash replays instead of losing.
//
// Seqs settled above the watermark are kept as ranges, not one by one. A record that stays unsettled for hours
// (an item retried without end while the rest of its source flows past it) then costs one range, whatever went
// past it: one entry per seq had grown by about 40 bytes per record and thrown at 2^24 of them (a Set's limit).

export class AckTracker {
  /** Every seq < low is settled. Seqs start at 0. */
  private low = 0;
  /**
   * Settled seqs at or above `low`, waiting for the gap below them to close: disjoint ranges
   * [starts[i], ends[i]), in order, with a gap between each two. Ranges before `head` are spent.
   */
  private starts: number[] = [];
  private ends: number[] = [];
  private head = 0;
  /** How many seqs the ranges hold. */
  private ahead = 0;
  private listener: ((watermark: number) => void) | undefined;

  constructor(
    readonly name: string,
    start = 0,
  ) {
    this.low = start;
  }

  /** Every seq below this is settled. */
  get watermark(): number {
    return this.low;
  }

  /** Seqs settled out of order, waiting for a gap below them (diagnostics). */
  get outOfOrder(): number {
    return this.ahead;
  }

  /** Runs of out-of-order seqs: each is one gap below it still open (diagnostics; memory is O(ranges)). */
  get ranges(): number {
    return this.starts.length - this.head;
  }

  onAdvance(listener: (watermark: number) => void): void {
    this.listener = listener;
  }

  /** Record `seq` as settled. True when it was not settled before (a duplicate settle is harmless, and false). */
  settle(seq: number): boolean {
    if (seq < this.low) return false; // already covered
    if (seq !== this.low) return this.addAhead(seq);
    let next = seq + 1;
    if (this.head < this.starts.length && this.starts[this.head] === next) {
      next = this.ends[this.head]!;
      this.ahead -= next - (seq + 1);
      this.head++;
      if (this.head === this.starts.length) this.clearRanges();
      else if (this.head >= 1024 && this.head * 2 >= this.starts.length) this.compact();
    }
    this.low = next;
    this.listener?.(next);
    return true;
  }

  /** Start over at `start` (a new collector incarnation numbers its records from there). */
  reset(start: number): void {
    this.low = start;
    this.clearRanges();
  }

  /** Record `seq` (> low) as settled; false when it already was. */
  private addAhead(seq: number): boolean {
    const starts = this.starts;
    const ends = this.ends;
    const last = starts.length - 1;
    // The usual case: settles come in order behind one open gap, so they extend or follow the last range.
    if (last < this.head || seq > ends[last]!) {
      starts.push(seq);
      ends.push(seq + 1);
      this.ahead++;
      return true;
    }
    if (seq === ends[last]) {
      ends[last] = seq + 1;
      this.ahead++;
      return true;
    }
    // Binary search: i is the last range starting at or before seq (head - 1 when there is none).
    let lo = this.head;
    let hi = last;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= seq) lo = mid + 1;
      else hi = mid - 1;
    }
    const i = hi;
    if (i >= this.head && seq < ends[i]!) return false; // already settled
    this.ahead++;
    const joinsPrev = i >= this.head && ends[i] === seq;
    const joinsNext = i + 1 <= last && starts[i + 1] === seq + 1;
    if (joinsPrev && joinsNext) {
      ends[i] = ends[i + 1]!;
      starts.splice(i + 1, 1);
      ends.splice(i + 1, 1);
    } else if (joinsPrev) {
      ends[i] = seq + 1;
    } else if (joinsNext) {
      starts[i + 1] = seq;
    } else {
      starts.splice(i + 1, 0, seq);
      ends.splice(i + 1, 0, seq + 1);
    }
    return true;
  }

  private clearRanges(): void {
    this.starts = [];
    this.ends = [];
    this.head = 0;
    this.ahead = 0;
  }

  /** Drop spent ranges from the arrays' front (amortized: only once they are half of them). */
  private compact(): void {
    this.starts = this.starts.slice(this.head);
    this.ends = this.ends.slice(this.head);
    this.head = 0;
  }
}
