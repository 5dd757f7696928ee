// Per-source settle watermark: the highest seq below which every record is settled by every sink.
// Sources commit positions (file offsets) only up to the watermark, so a crash replays instead of losing.

export class AckTracker {
  /** Every seq < watermark is settled. Seqs start at 0. */
  private low = 0;
  /** Settled seqs at or above `low`, waiting for the gap below them to close. */
  private readonly ahead = new Set<number>();
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

  /** Seqs settled out of order (diagnostics). */
  get outOfOrder(): number {
    return this.ahead.size;
  }

  onAdvance(listener: (watermark: number) => void): void {
    this.listener = listener;
  }

  settle(seq: number): void {
    if (seq < this.low) return; // already covered (duplicate settle is harmless)
    if (seq !== this.low) {
      this.ahead.add(seq);
      return;
    }
    let next = seq + 1;
    if (this.ahead.size > 0) {
      while (this.ahead.delete(next)) next++;
    }
    this.low = next;
    this.listener?.(next);
  }

  /** Start over at `start` (a new collector incarnation numbers its records from there). */
  reset(start: number): void {
    this.low = start;
    this.ahead.clear();
  }
}
