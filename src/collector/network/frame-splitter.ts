// GELF over TCP frames (protocols.md §1.5): each message ends with a NUL byte. A newline ends a frame too, so
// newline-framed senders and `\0\n` work; empty frames are skipped. Memory stays bounded by `maxFrameBytes`: a longer
// frame is discarded up to its delimiter and reported once, as soon as it goes over the limit (an endless frame is
// seen before its delimiter, which may never come).

export class FrameSplitter {
  private parts: Buffer[] = [];
  private length = 0;
  private discarding = false;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (frame: Buffer) => void,
    private readonly onOversize: () => void,
  ) {}

  /** Bytes held for a frame without its delimiter yet (at most `maxFrameBytes`). */
  get pendingBytes(): number {
    return this.length;
  }

  /** True when a frame has begun and not ended (bytes held, or an oversized frame being skipped). */
  get hasPending(): boolean {
    return this.length > 0 || this.discarding;
  }

  /** True while an oversized frame (already reported) is being skipped up to its delimiter. */
  get discardingOversized(): boolean {
    return this.discarding;
  }

  push(chunk: Buffer): void {
    const n = chunk.length;
    let pos = 0;
    // Next NUL and next newline, each searched again only once passed (searching per frame would be quadratic).
    let nul = -2;
    let nl = -2;
    while (pos < n) {
      if (nul !== -1 && nul < pos) nul = chunk.indexOf(0, pos);
      if (nl !== -1 && nl < pos) nl = chunk.indexOf(10, pos);
      const end = nul === -1 ? nl : nl === -1 ? nul : Math.min(nul, nl);
      if (end === -1) {
        this.append(chunk, pos, n);
        return;
      }
      if (this.length === 0 && !this.discarding && end - pos <= this.maxFrameBytes) {
        if (end > pos) this.onFrame(chunk.subarray(pos, end)); // fast path: the whole frame is in this chunk
      } else {
        this.append(chunk, pos, end);
        this.finish();
      }
      pos = end + 1;
    }
  }

  /** End of the connection: an undelimited tail is a last frame (Graylog does the same). */
  flush(): void {
    this.finish();
  }

  private append(chunk: Buffer, s: number, e: number): void {
    if (this.discarding || s === e) return;
    if (this.length + (e - s) > this.maxFrameBytes) {
      this.discarding = true;
      this.parts = [];
      this.length = 0;
      this.onOversize();
      return;
    }
    // A copy: a view would pin the whole (often 64 KiB) socket chunk for a short tail.
    this.parts.push(Buffer.from(chunk.subarray(s, e)));
    this.length += e - s;
  }

  private finish(): void {
    if (this.discarding) {
      this.discarding = false; // reported when it went over
      return;
    }
    if (this.length === 0) return;
    const frame = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.length);
    this.parts = [];
    this.length = 0;
    this.onFrame(frame);
  }
}
