// GELF straight from a record's bytes: the GelfSink's fast path, with no JSON.parse, no GELF object and no
// JSON.stringify. Those cost about 8 µs per 200-byte record in a loop here and about 20 µs in a loaded host, more
// than the UDP send itself.
//
// The contract is exact: for every record it accepts, the bytes it writes are the UTF-8 of what the general path
// (`JSON.stringify(toGelf(JSON.parse(text), mapping))`) produces. It reads records as collectors write them,
// canonical JSON (JSON.stringify output: no whitespace, keys in Object.keys order, no duplicate keys), so strings
// and numbers can be copied verbatim. It accepts only records it can copy; for the others `prepare` returns -1
// and the general path, which stays the definition of the mapping, builds them:
//
// - a `message` with a line break or trailing whitespace (short_message and full_message need the text), and
//   a non-empty string `error.stack_trace` (full_message);
// - an `@timestamp` that is not a string Date.parse reads (the general path falls back to the clock);
// - a key with an escape in it; two fields that map to the same GELF name (the general path keeps the first);
// - whitespace between tokens, or anything else that is not JSON. Numbers are copied as written: collectors only
//   write JSON.stringify's.
//
// The differential test in test/unit/sinks/gelf-bytes.test.ts holds the two paths to the same bytes.
import type { LogLevel } from "../record.js";
import { gelfFieldName, type GelfMappingOptions } from "./gelf-message.js";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

const HEAD = Buffer.from('{"version":"1.1","host":');
const SHORT = Buffer.from(',"short_message":');
const TIMESTAMP = Buffer.from(',"timestamp":');
const LEVEL = Buffer.from(',"level":');
const EMPTY_SHORT = Buffer.from('"-"');
const TRUE = Buffer.from('"true"');
const FALSE = Buffer.from('"false"');

/** What a path is to the standard fields (the general path's `skip` and level lookup), fixed by its keys. */
const enum Kind {
  PLAIN = 0,
  // Top level: `message`, `@timestamp`, `host`, `error`, `log`.
  MESSAGE = 1,
  TIMESTAMP = 2,
  HOST = 3,
  ERROR = 4,
  LOG = 5,
  // Under those: `host.name`, `error.stack_trace`, `log.level`, `log.syslog`.
  HOST_NAME = 6,
  STACK_TRACE = 7,
  LOG_LEVEL = 8,
  LOG_SYSLOG = 9,
}

function kindOf(parentKind: Kind, parent: number, key: string): Kind {
  if (parent === ROOT) {
    if (key === "message") return Kind.MESSAGE;
    if (key === "@timestamp") return Kind.TIMESTAMP;
    if (key === "host") return Kind.HOST;
    if (key === "error") return Kind.ERROR;
    if (key === "log") return Kind.LOG;
    return Kind.PLAIN;
  }
  if (parentKind === Kind.HOST && key === "name") return Kind.HOST_NAME;
  if (parentKind === Kind.ERROR && key === "stack_trace") return Kind.STACK_TRACE;
  if (parentKind === Kind.LOG && key === "level") return Kind.LOG_LEVEL;
  if (parentKind === Kind.LOG && key === "syslog") return Kind.LOG_SYSLOG;
  return Kind.PLAIN;
}

/** Field paths remembered; past this the table starts over (random keys must not grow it without bound). */
const MAX_PATHS = 10_000;
/** Slots of the table's open addressing: at most half of them are ever used. */
const SLOTS = 1 << 15;
/**
 * Paths one record may add: the start-over happens only between records, so a record with more new keys than this
 * is declined (the general path builds it). A full table would make the probe loop forever.
 */
const MAX_FILLED = SLOTS >> 1;
/** Slots one lookup looks at; a key past them is declined (the general path builds its record). */
const MAX_PROBES = 64;
const ROOT = 0;
const NONE = -1;

/**
 * Field paths by their keys' bytes, so a record's keys are never decoded: node `id` is the path of `key` under
 * node `parent`. Each path knows its GELF name as `,"_name":` bytes, and a name id: two paths can map to one name.
 */
class FieldTable {
  private parents: number[] = [];
  private keys: Buffer[] = [];
  /** Kind per node. */
  kinds: Kind[] = [];
  /**
   * The shape last seen, to skip the hash: per node, the node of the key that came right after it in its object
   * (`after`) and of the first key of the object it holds (`first`), or NONE. Records of one source mostly repeat
   * their keys in one order, so the next key is most often the one these predict, and comparing its bytes is enough.
   */
  private after: number[] = [];
  private first: number[] = [];
  private hashes: number[] = [];
  private paths: string[] = [];
  /** `,"_name":` per node. */
  fieldBytes: Buffer[] = [];
  /** Name id per node (index into `stamps`). */
  nameIds: number[] = [];
  private nameIndex = new Map<string, number>();
  /** Open addressing over node ids + 1 (0 = empty). */
  private slots = new Int32Array(SLOTS);

  constructor() {
    this.reset();
  }

  /**
   * The node for key `src[s, e)` under `parent`, added when new; -1 when the table has no room left for it, or when
   * it sits behind a long run of other keys (keys chosen to collide would make every lookup walk that run).
   */
  lookup(parent: number, src: Buffer, s: number, e: number): number {
    let h = Math.imul(parent + 1, 0x9e3779b1) ^ (e - s);
    for (let k = s; k < e; k++) h = Math.imul(h ^ src[k]!, 0x01000193);
    const mask = this.slots.length - 1;
    // The high bits: the low ones of a multiplicative hash depend only on the low bits of each step.
    let slot = (Math.imul(h, 0x9e3779b1) >>> 17) & mask;
    for (let probes = 0; probes < MAX_PROBES; probes++, slot = (slot + 1) & mask) {
      const id = this.slots[slot]! - 1;
      if (id < 0) return this.parents.length >= MAX_FILLED ? -1 : this.add(slot, h, parent, src, s, e);
      if (this.hashes[id] === h && this.parents[id] === parent && sameBytes(this.keys[id]!, src, s, e)) return id;
    }
    return -1;
  }

  /**
   * The node the last record had for the key at `src[i]` (its opening quote) in the object of node `parent`, after
   * the key of node `prev` (NONE: the object's first key), when the same key is there: its bytes, the closing quote
   * and ':' before `end`. A stored key has no escapes or control characters, so the quote after the same bytes closes
   * the key. NONE otherwise; `lookup` then reads the key and `remember` notes what came.
   */
  predict(parent: number, prev: number, src: Buffer, i: number, end: number): number {
    const guess = prev === NONE ? this.first[parent]! : this.after[prev]!;
    if (guess === NONE) return NONE;
    const k = this.keys[guess]!;
    const n = k.length;
    const close = i + 1 + n;
    if (close + 2 >= end || src[i] !== QUOTE || src[close] !== QUOTE || src[close + 1] !== COLON) return NONE;
    for (let j = 0; j < n; j++) if (k[j] !== src[i + 1 + j]) return NONE;
    return guess;
  }

  /** Node `node` came after the key of `prev` (NONE: first) in the object of node `parent`. */
  remember(parent: number, prev: number, node: number): void {
    if (prev === NONE) this.first[parent] = node;
    else this.after[prev] = node;
  }

  /** Length of node `node`'s key in bytes. */
  keyLength(node: number): number {
    return this.keys[node]!.length;
  }

  /** Start over when full; only between records (node ids of the record being read must stay valid). */
  trim(): void {
    if (this.parents.length >= MAX_PATHS) this.reset();
  }

  private add(slot: number, h: number, parent: number, src: Buffer, s: number, e: number): number {
    const key = Buffer.from(src.subarray(s, e));
    const text = key.toString("utf8");
    const path = parent === ROOT ? text : `${this.paths[parent]!}_${text}`;
    const name = gelfFieldName(path);
    let nameId = this.nameIndex.get(name);
    if (nameId === undefined) this.nameIndex.set(name, (nameId = this.nameIndex.size));
    const id = this.parents.length;
    this.parents.push(parent);
    this.keys.push(key);
    this.hashes.push(h);
    this.paths.push(path);
    this.fieldBytes.push(Buffer.from(`,"${name}":`, "latin1"));
    this.nameIds.push(nameId);
    this.kinds.push(kindOf(this.kinds[parent]!, parent, text));
    this.after.push(NONE);
    this.first.push(NONE);
    this.slots[slot] = id + 1;
    return id;
  }

  private reset(): void {
    this.parents = [-1];
    this.keys = [Buffer.alloc(0)];
    this.hashes = [0];
    this.paths = [""];
    this.fieldBytes = [Buffer.alloc(0)];
    this.nameIds = [-1];
    this.kinds = [Kind.PLAIN];
    this.after = [NONE];
    this.first = [NONE];
    this.nameIndex = new Map();
    this.slots.fill(0);
  }
}

export class GelfBytesEncoder {
  private readonly levels: Readonly<Record<LogLevel, number>>;
  private readonly maxDepth: number;
  private readonly fallbackHost: Buffer;
  private readonly fields = new FieldTable();
  /** stamps[nameId] === this.serial: the name was already sent in this record. */
  private stamps = new Int32Array(256);
  private serial = 0;
  private readonly levelBytes: Buffer[] = [];
  private readonly levelKeys: LogLevel[];
  private readonly levelNames: Buffer[];
  /** The additional fields of the record being encoded, as they will be sent. */
  private extras = Buffer.allocUnsafe(4096);
  private extrasEnd = 0;
  // Per record: what the standard fields come from.
  private src: Buffer = HEAD;
  private messageStart = -1;
  private messageEnd = -1;
  private hostStart = -1;
  private hostEnd = -1;
  private level = 0;
  /** log.syslog.severity.code of the record being encoded, or -1: the level when set. */
  private syslogLevel = -1;
  /** Length of the timestamp text in secondsText for the record `prepare` read last. */
  private secondsLength = 0;
  // The timestamp: the last minute parsed, and the integer seconds last written at the start of secondsText.
  private minuteText = Buffer.alloc(0);
  private minuteMs = 0;
  private wholeSeconds = -1;
  private wholeLength = 0;
  private readonly secondsText = Buffer.alloc(64);
  // Set by scanString: where the last escape of the string began (-1 when it has none) and whether one was \n or \r.
  private lastEscape = -1;
  private lineBreak = false;
  /** Set by `key`: where the value of the key it read starts. */
  private valueAt = 0;

  constructor(mapping: GelfMappingOptions) {
    this.levels = mapping.levels;
    this.maxDepth = mapping.flattenDepth;
    this.fallbackHost = Buffer.from(JSON.stringify(mapping.host));
    // The general path looks levels up as own properties of the mapping.
    this.levelKeys = Object.keys(mapping.levels) as LogLevel[];
    this.levelNames = this.levelKeys.map((k) => Buffer.from(k));
    for (let n = 0; n <= 7; n++) this.levelBytes.push(Buffer.from(String(n)));
  }

  /**
   * Read the record whose canonical JSON is `src[start, end)` and return the size of its GELF JSON, or -1 when the
   * general path must build it (see the list above). `writeTo` then writes it (before the next `prepare`), wherever
   * the caller wants it.
   */
  prepare(src: Buffer, start: number, end: number): number {
    if (end - start < 2 || src[start] !== OPEN_BRACE || src[end - 1] !== CLOSE_BRACE) return -1;
    this.src = src;
    this.extrasEnd = 0;
    this.fields.trim();
    if (++this.serial === 0x7fffffff) {
      this.serial = 1;
      this.stamps.fill(0);
    }
    this.messageStart = -1;
    this.hostStart = -1;
    this.level = this.levels.info;
    this.syslogLevel = -1;
    let seconds = -1;
    let sawMessage = false;
    let i = start + 1;
    if (src[i] === CLOSE_BRACE) return -1; // no @timestamp
    const kinds = this.fields.kinds;
    for (let prev = NONE; ; ) {
      const node = this.key(ROOT, prev, i, end);
      if (node < 0) return -1;
      prev = node;
      const v = this.valueAt;
      const kind = kinds[node]!;
      let next: number;
      if (kind === Kind.MESSAGE) {
        if (sawMessage) return -1;
        sawMessage = true;
        next = this.message(v, end);
      } else if (kind === Kind.TIMESTAMP) {
        if (seconds >= 0 || src[v] !== QUOTE) return -1;
        next = this.scanString(v, end);
        if (next < 0 || this.lastEscape >= 0) return -1;
        seconds = this.seconds(v + 1, next - 1);
        if (seconds < 0) return -1;
      } else {
        next = this.field(node, v, end, 1);
      }
      if (next < 0) return -1;
      if (src[next] === COMMA) i = next + 1;
      else if (next === end - 1) break;
      else return -1;
    }
    if (seconds < 0) return -1;
    if (this.syslogLevel >= 0) this.level = this.syslogLevel;

    const host = this.hostStart >= 0 ? this.hostEnd - this.hostStart : this.fallbackHost.length;
    const message = this.messageStart >= 0 ? this.messageEnd - this.messageStart : EMPTY_SHORT.length;
    const levelBytes = this.levelBytes[this.level]!;
    const size = HEAD.length + host + SHORT.length + message + TIMESTAMP.length + seconds + LEVEL.length + levelBytes.length + this.extrasEnd + 1;
    this.secondsLength = seconds;
    return size;
  }

  /** Write the GELF JSON `prepare` measured into `out` at `at` (room for it is the caller's); returns the end. */
  writeTo(out: Buffer, at: number): number {
    const src = this.src;
    let p = put(out, at, HEAD);
    p = this.hostStart >= 0 ? copyBytes(src, this.hostStart, this.hostEnd, out, p) : put(out, p, this.fallbackHost);
    p = put(out, p, SHORT);
    p = this.messageStart >= 0 ? copyBytes(src, this.messageStart, this.messageEnd, out, p) : put(out, p, EMPTY_SHORT);
    p = put(out, p, TIMESTAMP);
    p = copyBytes(this.secondsText, 0, this.secondsLength, out, p);
    p = put(out, p, LEVEL);
    p = put(out, p, this.levelBytes[this.level]!);
    p = copyBytes(this.extras, 0, this.extrasEnd, out, p);
    out[p++] = CLOSE_BRACE;
    return p;
  }

  /** The top-level `message` at `v`: kept when it is one line without trailing whitespace. Returns its end or -1. */
  private message(v: number, end: number): number {
    const src = this.src;
    if (src[v] !== QUOTE) return this.skipValue(v, end); // not a string: the general path reads it as ""
    const e = this.scanString(v, end);
    if (e < 0 || this.lineBreak) return -1;
    const close = e - 1;
    if (close > v + 1) {
      const esc = this.lastEscape;
      if (esc >= 0) {
        // Text that ends in an escape keeps it only for \", \\ and \b: \t, \f and \u000b are whitespace.
        const kind = src[esc + 1];
        if (esc + (kind === 0x75 /* u */ ? 6 : 2) === close && kind !== QUOTE && kind !== BACKSLASH && kind !== 0x62 /* b */) return -1;
      }
      const last = src[close - 1]!;
      if (last === 0x20 || (last >= 0x80 && endsInUnicodeSpace(src, close - 1))) return -1;
      this.messageStart = v;
      this.messageEnd = e;
    }
    return e;
  }

  /** The value at `v` of the field path `node` (-1: no room for its path), `depth` objects deep. Returns its end or -1. */
  private field(node: number, v: number, end: number, depth: number): number {
    if (node < 0) return -1;
    const src = this.src;
    const c = src[v];
    if (c === QUOTE) {
      const e = this.scanString(v, end);
      return e < 0 || !this.add(node, v, e, false) ? -1 : e;
    }
    if (c === OPEN_BRACE) {
      if (depth >= this.maxDepth) {
        // host, error and log are also read for standard fields: the general path does that from the object.
        const kind = this.fields.kinds[node];
        if (kind === Kind.HOST || kind === Kind.ERROR || kind === Kind.LOG) return -1;
        const e = this.skipNested(v, end);
        return e < 0 || !this.add(node, v, e, true) ? -1 : e;
      }
      return this.object(node, v, end, depth);
    }
    if (c === OPEN_BRACKET) {
      const e = this.skipNested(v, end);
      return e < 0 || !this.add(node, v, e, true) ? -1 : e;
    }
    if (c === 0x74 /* t */) return isKey(src, v, "true") && this.addConstant(node, TRUE) ? v + 4 : -1;
    if (c === 0x66 /* f */) return isKey(src, v, "false") && this.addConstant(node, FALSE) ? v + 5 : -1;
    if (c === 0x6e /* n */) return isKey(src, v, "null") ? v + 4 : -1;
    const e = scanNumber(src, v, end);
    return e < 0 || !this.add(node, v, e, false) ? -1 : e;
  }

  private object(node: number, v: number, end: number, depth: number): number {
    const src = this.src;
    let i = v + 1;
    if (src[i] === CLOSE_BRACE) return i + 1;
    const kinds = this.fields.kinds;
    for (let prev = NONE; ; ) {
      const child = this.key(node, prev, i, end);
      if (child < 0) return -1;
      prev = child;
      const m = this.valueAt;
      const kind = kinds[child]!;
      let next: number;
      if (kind === Kind.HOST_NAME) {
        // host.name is the GELF host (when it is a non-blank string) and is not repeated as `_host_name`.
        next = this.skipValue(m, end);
        if (next >= 0 && src[m] === QUOTE && !this.isBlank(m, next)) {
          this.hostStart = m;
          this.hostEnd = next;
        }
      } else if (kind === Kind.STACK_TRACE && src[m] === QUOTE) {
        // A string stack trace goes into full_message: the general path's job. An empty one is only skipped.
        next = this.scanString(m, end);
        if (next !== m + 2) return -1;
      } else {
        if (kind === Kind.LOG_LEVEL && !this.readLevel(m, end)) return -1;
        // log.syslog's severity sets the level over log.level (see levelOf); the object is sent as extras all the same.
        if (kind === Kind.LOG_SYSLOG && !this.readSeverity(m, end)) return -1;
        next = this.field(child, m, end, depth + 1);
      }
      if (next < 0) return -1;
      if (src[next] === COMMA) i = next + 1;
      else if (src[next] === CLOSE_BRACE) return next + 1;
      else return -1;
    }
  }

  /**
   * The node of the key starting at `i` in the object of node `parent`, whose key before it had node `prev` (NONE
   * for its first); `valueAt` is then where its value starts. -1 to decline (a key with escapes, no room left).
   */
  private key(parent: number, prev: number, i: number, end: number): number {
    const t = this.fields;
    const guess = t.predict(parent, prev, this.src, i, end);
    if (guess !== NONE) {
      this.valueAt = i + t.keyLength(guess) + 3;
      return guess;
    }
    const v = this.keyAt(i, end);
    if (v < 0) return -1;
    const node = t.lookup(parent, this.src, i + 1, v - 2);
    if (node < 0) return -1;
    t.remember(parent, prev, node);
    this.valueAt = v;
    return node;
  }

  /** The key starting at `i` (a string without escapes, then ':'): returns where its value starts, or -1. */
  private keyAt(i: number, end: number): number {
    const src = this.src;
    if (src[i] !== QUOTE) return -1;
    const keyEnd = this.scanString(i, end);
    return keyEnd < 0 || this.lastEscape >= 0 || src[keyEnd] !== COLON ? -1 : keyEnd + 1;
  }

  /**
   * log.syslog at `v`: its `severity.code`, a digit 0 to 7, is the GELF level (`syslogLevel`). False when only the
   * general path can tell (another spelling of a number, a key with escapes).
   */
  private readSeverity(v: number, end: number): boolean {
    const src = this.src;
    if (src[v] !== OPEN_BRACE) return true;
    for (let i = v + 1; src[i] !== CLOSE_BRACE; ) {
      const m = this.keyAt(i, end);
      if (m < 0) return false;
      if (m - i - 3 === 8 && isKey(src, i + 1, "severity") && src[m] === OPEN_BRACE) {
        for (let k = m + 1; src[k] !== CLOSE_BRACE; ) {
          const c = this.keyAt(k, end);
          if (c < 0) return false;
          const after = this.skipValue(c, end);
          if (after < 0) return false;
          if (c - k - 3 === 4 && isKey(src, k + 1, "code") && src[c] !== QUOTE && src[c] !== OPEN_BRACE && src[c] !== OPEN_BRACKET) {
            const d = src[c]!;
            if (after === c + 1 && d >= 0x30 && d <= 0x37) this.syslogLevel = d - 0x30;
            else if (after !== c + 4 || (d !== 0x74 && d !== 0x6e)) return false; // a number spelled otherwise (5.0, 1e0, 08)
          }
          if (src[after] === COMMA) k = after + 1;
          else if (src[after] !== CLOSE_BRACE) return false;
          else k = after;
        }
      }
      const next = this.skipValue(m, end);
      if (next < 0) return false;
      if (src[next] === COMMA) i = next + 1;
      else if (src[next] === CLOSE_BRACE) break;
      else return false;
    }
    return true;
  }

  /** log.level at `v` sets the GELF level when it names one; false when only the general path can tell. */
  private readLevel(v: number, end: number): boolean {
    const src = this.src;
    // The general path looks the level up by String(value): an array holding one name would match.
    if (src[v] === OPEN_BRACKET) return false;
    if (src[v] !== QUOTE) return true;
    const e = this.scanString(v, end);
    if (e < 0 || this.lastEscape >= 0) return false;
    for (let k = 0; k < this.levelNames.length; k++) {
      if (sameBytes(this.levelNames[k]!, src, v + 1, e - 1)) {
        this.level = this.levels[this.levelKeys[k]!];
        break;
      }
    }
    return true;
  }

  /** Add `,"_name":` + the value `src[s, e)`: copied, or as JSON text in a string when `asText`. False on a clash. */
  private add(node: number, s: number, e: number, asText: boolean): boolean {
    const field = this.claim(node);
    if (field === undefined) return false;
    // As text, every byte may need a backslash in front.
    this.reserve(field.length + (asText ? 2 * (e - s) + 2 : e - s));
    const src = this.src;
    const out = this.extras;
    let p = put(out, this.extrasEnd, field);
    if (!asText) p = copyBytes(src, s, e, out, p);
    else {
      out[p++] = QUOTE;
      for (let k = s; k < e; k++) {
        const b = src[k]!;
        if (b === QUOTE || b === BACKSLASH) out[p++] = BACKSLASH;
        out[p++] = b;
      }
      out[p++] = QUOTE;
    }
    this.extrasEnd = p;
    return true;
  }

  private addConstant(node: number, value: Buffer): boolean {
    const field = this.claim(node);
    if (field === undefined) return false;
    this.reserve(field.length + value.length);
    this.extrasEnd = put(this.extras, put(this.extras, this.extrasEnd, field), value);
    return true;
  }

  /** The `,"_name":` bytes of `node`, or undefined when its name was already sent in this record. */
  private claim(node: number): Buffer | undefined {
    const nameId = this.fields.nameIds[node]!;
    if (nameId >= this.stamps.length) {
      const grown = new Int32Array(Math.max(2 * this.stamps.length, nameId + 1));
      grown.set(this.stamps);
      this.stamps = grown;
    }
    if (this.stamps[nameId] === this.serial) return undefined;
    this.stamps[nameId] = this.serial;
    return this.fields.fieldBytes[node];
  }

  private reserve(n: number): void {
    if (this.extrasEnd + n <= this.extras.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.extras.length, this.extrasEnd + n));
    this.extras.copy(bigger, 0, 0, this.extrasEnd);
    this.extras = bigger;
  }

  /**
   * GELF seconds for the timestamp text `src[s, e)`, written to `secondsText`; returns their length, or -1 when
   * Date.parse cannot read the text.
   */
  private seconds(s: number, e: number): number {
    const src = this.src;
    // YYYY-MM-DDTHH:MM:SS.mmmZ, as collectors write @timestamp: the minute is parsed once, seconds and ms added.
    if (e - s === 24 && isIsoMinute(src, s) && src[s + 16] === 0x3a && src[s + 19] === 0x2e && src[s + 23] === 0x5a) {
      const sec = digits(src, s + 17, 2);
      const milli = digits(src, s + 20, 3);
      if (sec >= 0 && sec <= 59 && milli >= 0) {
        if (!sameBytes(this.minuteText, src, s, s + 16)) {
          const minute = Date.parse(src.toString("latin1", s, s + 16) + ":00.000Z");
          if (Number.isNaN(minute)) return -1;
          this.minuteText = Buffer.from(src.subarray(s, s + 16));
          this.minuteMs = minute;
        }
        return this.writeSeconds(this.minuteMs + sec * 1000 + milli);
      }
    }
    const ms = Date.parse(src.toString("latin1", s, e));
    return Number.isNaN(ms) ? -1 : this.writeSeconds(ms);
  }

  /** `ms / 1000` as JSON.stringify writes it, into `secondsText`; returns the length. */
  private writeSeconds(ms: number): number {
    const out = this.secondsText;
    if (ms < 0 || ms >= 1e15 || !Number.isInteger(ms)) {
      this.wholeSeconds = -1; // that text overwrote the cached whole seconds
      return out.write(JSON.stringify(ms / 1000), 0, "latin1");
    }
    // For a whole number of ms below 1e15 that is the integer seconds, then up to 3 fraction digits without trailing
    // zeros: the shortest decimal that reads back as the same double (the test compares every case it meets).
    const whole = Math.floor(ms / 1000);
    let p = whole === this.wholeSeconds ? this.wholeLength : (this.wholeLength = out.write(String((this.wholeSeconds = whole)), 0, "latin1"));
    let frac = ms - whole * 1000;
    if (frac === 0) return p;
    out[p++] = 0x2e;
    out[p++] = 0x30 + Math.floor(frac / 100);
    frac %= 100;
    if (frac === 0) return p;
    out[p++] = 0x30 + Math.floor(frac / 10);
    frac %= 10;
    if (frac !== 0) out[p++] = 0x30 + frac;
    return p;
  }

  /** The string `src[s, e)` (quotes included) is empty or whitespace only, as String#trim sees it. */
  private isBlank(s: number, e: number): boolean {
    const src = this.src;
    let escaped = false;
    for (let k = s + 1; k < e - 1; k++) {
      const b = src[k]!;
      if (b === BACKSLASH) escaped = true;
      else if (b > 0x20 && b < 0x80 && !escaped) return false;
    }
    return (JSON.parse(src.toString("utf8", s, e)) as string).trim().length === 0;
  }

  /**
   * The string starting with the quote at `s`; returns the index after its closing quote, or -1 when it is not
   * one before `end`. Sets `lastEscape` and `lineBreak`.
   */
  private scanString(s: number, end: number): number {
    const src = this.src;
    this.lastEscape = -1;
    this.lineBreak = false;
    for (let k = s + 1; k < end; k++) {
      const b = src[k]!;
      if (b === QUOTE) return k + 1;
      if (b === BACKSLASH) {
        this.lastEscape = k;
        const esc = src[++k];
        if (esc === 0x6e /* n */ || esc === 0x72 /* r */) this.lineBreak = true;
      } else if (b < 0x20) return -1;
    }
    return -1;
  }

  /** Any value at `v`; returns its end or -1. */
  private skipValue(v: number, end: number): number {
    const c = this.src[v];
    if (c === QUOTE) return this.scanString(v, end);
    if (c === OPEN_BRACE || c === OPEN_BRACKET) return this.skipNested(v, end);
    if (c === 0x74) return isKey(this.src, v, "true") ? v + 4 : -1;
    if (c === 0x66) return isKey(this.src, v, "false") ? v + 5 : -1;
    if (c === 0x6e) return isKey(this.src, v, "null") ? v + 4 : -1;
    return scanNumber(this.src, v, end);
  }

  /** The object or array opening at `v`; returns the index after its closing bracket or -1. */
  private skipNested(v: number, end: number): number {
    const src = this.src;
    let depth = 0;
    for (let k = v; k < end; k++) {
      const b = src[k]!;
      if (b === QUOTE) {
        k = this.scanString(k, end) - 1;
        if (k < 0) return -1;
      } else if (b === OPEN_BRACE || b === OPEN_BRACKET) depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        if (--depth === 0) return k + 1;
      } else if (b <= 0x20) return -1;
    }
    return -1;
  }
}

function put(out: Buffer, at: number, piece: Buffer): number {
  out.set(piece, at);
  return at + piece.length;
}

/** `src` holds the ASCII text `word` at `at`. */
function isKey(src: Buffer, at: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) if (src[at + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** `YYYY-MM-DDTHH:MM` at `s`. */
function isIsoMinute(src: Buffer, s: number): boolean {
  return (
    digits(src, s, 4) >= 0 && src[s + 4] === 0x2d && digits(src, s + 5, 2) >= 0 && src[s + 7] === 0x2d && digits(src, s + 8, 2) >= 0 &&
    src[s + 10] === 0x54 && digits(src, s + 11, 2) >= 0 && src[s + 13] === 0x3a && digits(src, s + 14, 2) >= 0
  );
}

/** The `n` decimal digits at `s` as a number, or -1. */
function digits(src: Buffer, s: number, n: number): number {
  let v = 0;
  for (let k = s; k < s + n; k++) {
    const d = src[k]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

function sameBytes(key: Buffer, src: Buffer, s: number, e: number): boolean {
  if (key.length !== e - s) return false;
  for (let k = 0; k < key.length; k++) if (key[k] !== src[s + k]) return false;
  return true;
}

/**
 * Copy `src[s, e)` to `out` at `p`; returns the end. Up to about 20 bytes a loop is cheaper; longer spans go
 * through a view and TypedArray#set (Buffer#copy does the same after its argument handling, at twice the cost).
 */
function copyBytes(src: Buffer, s: number, e: number, out: Buffer, p: number): number {
  if (e - s > 20) {
    out.set(new Uint8Array(src.buffer, src.byteOffset + s, e - s), p);
    return p + e - s;
  }
  for (let k = s; k < e; k++) out[p++] = src[k]!;
  return p;
}

/** A JSON number at `v`; returns its end or -1. */
function scanNumber(src: Buffer, v: number, end: number): number {
  let k = v;
  while (k < end) {
    const b = src[k]!;
    if ((b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2b || b === 0x2e || b === 0x65 || b === 0x45) k++;
    else break;
  }
  return k > v ? k : -1;
}

/** The UTF-8 character ending at `last` is one String#trim removes (a space other than U+0020, or a line break). */
function endsInUnicodeSpace(src: Buffer, last: number): boolean {
  const b = src[last]!;
  const b1 = src[last - 1]!;
  if (b1 === 0xc2) return b === 0xa0; // U+00A0
  const b2 = src[last - 2]!;
  if (b2 === 0xe1) return b1 === 0x9a && b === 0x80; // U+1680
  if (b2 === 0xe2 && b1 === 0x80) return (b >= 0x80 && b <= 0x8a) || b === 0xa8 || b === 0xa9 || b === 0xaf; // U+2000–200A, 2028, 2029, 202F
  if (b2 === 0xe2 && b1 === 0x81) return b === 0x9f; // U+205F
  if (b2 === 0xe3) return b1 === 0x80 && b === 0x80; // U+3000
  if (b2 === 0xef) return b1 === 0xbb && b === 0xbf; // U+FEFF
  return false;
}
