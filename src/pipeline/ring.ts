// A growable circular FIFO: O(1) push/shift without Array#shift's copying, for queues of millions of entries.

export class Ring<T> {
  private buf: (T | undefined)[];
  private head = 0;
  private len = 0;
  private readonly initial: number;

  constructor(capacity = 16) {
    let c = 16;
    while (c < capacity) c *= 2;
    this.initial = c;
    this.buf = new Array<T | undefined>(c);
  }

  /**
   * When empty, go back to the first capacity if a burst grew it past `above` slots: a queue that is mostly empty
   * (one of many `write()` sources) does not keep a burst's worth of memory for good.
   */
  shrinkIfEmpty(above = 1024): void {
    if (this.len === 0 && this.buf.length > above && this.buf.length > this.initial) {
      this.buf = new Array<T | undefined>(this.initial);
      this.head = 0;
    }
  }

  get length(): number {
    return this.len;
  }

  push(value: T): void {
    if (this.len === this.buf.length) this.grow();
    this.buf[(this.head + this.len) & (this.buf.length - 1)] = value;
    this.len++;
  }

  /** Put a value back at the front (oldest position). */
  unshift(value: T): void {
    if (this.len === this.buf.length) this.grow();
    this.head = (this.head - 1) & (this.buf.length - 1);
    this.buf[this.head] = value;
    this.len++;
  }

  shift(): T | undefined {
    if (this.len === 0) return undefined;
    const value = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.len--;
    return value;
  }

  peek(): T | undefined {
    return this.len === 0 ? undefined : this.buf[this.head];
  }

  /** Remove and return every value, oldest first. */
  drain(): T[] {
    const out = new Array<T>(this.len);
    for (let i = 0; i < out.length; i++) out[i] = this.shift()!;
    return out;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.buf.length * 2);
    for (let i = 0; i < this.len; i++) next[i] = this.buf[(this.head + i) & (this.buf.length - 1)];
    this.buf = next;
    this.head = 0;
  }
}
