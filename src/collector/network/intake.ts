// Where every listener hands its decoded input: lines and GELF payloads become ECS records with the peer's address,
// are pushed to the host, and out-of-credit pauses the listeners. One instance per network collector.
import { isUtf8 } from "node:buffer";
import type { LogRecord } from "../../record.js";
import { buildRecord, createParser, type Parser, type RecordContext } from "../parse/index.js";
import { type FastRecordPlan, type RecordWriter, fastJsonRecordBytes, planFastRecord } from "../parse/fast-json-record.js";
import { LineFlags } from "../line-splitter.js";
import { DEFAULT_SLICES, type SliceLimits } from "./slices.js";
import type { WireParserSpec } from "../../sources/specs.js";
import type { NetworkCounters } from "./counters.js";
import { decompressGelf, parseGelf } from "./gelf-decode.js";

/** The sending end of a connection or datagram → ECS `client.ip` / `client.port`. One object per connection. */
export interface Peer {
  readonly ip: string;
  readonly port: number;
  /** The fast path's plan for this peer's records (`client` is in each), made on its first line; null: none. */
  plan?: FastRecordPlan | null;
}

/**
 * What the intake needs from the channel (a ChildChannel in the collector; a fake in unit tests). With `reserve` and
 * `commit` (a RecordWriter), JSON lines take the fast path: their records are written from the line's bytes.
 */
export interface RecordSink extends Partial<RecordWriter> {
  push(json: string): boolean;
  readonly hasCredit: boolean;
  /** Whether more than `records` and `bytes` of credit are left (`hasCredit` is the same with 0 and 0). */
  hasCreditOver(records: number, bytes: number): boolean;
}

export interface IntakeOptions {
  source: string;
  fields: Record<string, unknown> | undefined;
  parser: WireParserSpec;
  /** Decompressed GELF limit. */
  maxGelfBytes: number;
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) → `10.0.0.1`. */
export function peerOf(address: string | undefined, port: number | undefined): Peer {
  const ip = address === undefined ? "" : address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
  return { ip, port: port ?? 0 };
}

export class Intake {
  private readonly parser: Parser;
  private readonly ctx: RecordContext;
  /** The channel as a RecordWriter, when JSON lines may take the fast path. */
  private readonly writer: RecordWriter | undefined;
  /** Credit kept for UDP: TCP, TLS and HTTP stop reading while no more than this is left. */
  private reserveRecords = 0;
  private reserveBytes = 0;
  /** How listeners cut their input between credit checks (sized to the credit window by the collector). */
  slices: SliceLimits = DEFAULT_SLICES;

  constructor(
    private readonly options: IntakeOptions,
    private readonly out: RecordSink,
    readonly counters: NetworkCounters,
    /** Called when a push spent the last credit: the listeners stop reading. */
    private readonly onOutOfCredit: () => void,
  ) {
    this.parser = createParser(options.parser);
    // No `host`: records come from other machines, so our host name would be wrong on them.
    this.ctx = { now: "", source: options.source, fields: options.fields };
    this.writer = options.parser === "json" && out.reserve !== undefined && out.commit !== undefined ? (out as RecordWriter) : undefined;
  }

  /** The source parses syslog: its TCP and TLS connections may use octet counting (RFC 6587, RFC 5425). */
  get syslog(): boolean {
    const p = this.options.parser;
    return p === "syslog" || (typeof p === "object" && "syslog" in p);
  }

  /** Whether lines may come as bytes only (LineFlags.LAZY_TEXT): the fast path reads them, the rest decodes them. */
  get lazyLines(): boolean {
    return this.writer !== undefined;
  }

  /**
   * Whether TCP, TLS and HTTP may read on: credit beyond the UDP reserve. Those can wait (the sender's socket fills
   * and it slows down); a datagram that finds no credit is lost. Without a reserve, one big HTTP body or TCP stream
   * took every record of credit as soon as it came back, and the UDP senders' messages were dropped meanwhile.
   */
  /** A listener stopped reading for want of credit: every listener pauses until credit comes (if not already). */
  outOfCredit(): void {
    this.onOutOfCredit();
  }

  get hasCredit(): boolean {
    // With no reserve (0, 0) this is `hasCredit`.
    return this.out.hasCreditOver(this.reserveRecords, this.reserveBytes);
  }

  /** Whether a UDP message may be shipped: any credit left, the reserve included. */
  get hasUdpCredit(): boolean {
    return this.out.hasCredit;
  }

  /** Keep `records` and `bytes` of credit for UDP (set when a source listens on UDP and on a stream or HTTP too). */
  reserveForUdp(records: number, bytes: number): void {
    this.reserveRecords = records;
    this.reserveBytes = bytes;
  }

  /**
   * Take the arrival time once per read chunk or datagram: everything decoded from it shares it. `at`: an arrival
   * time taken earlier (an HTTP body shipped in slices as credit comes keeps the time it arrived).
   */
  stamp(at?: string): void {
    this.ctx.now = at ?? new Date().toISOString();
  }

  /**
   * A line went over `maxMessageBytes` and is being cut: count it now (the listener then drops the TRUNCATED line
   * its splitter emits at the newline, if one ever comes, without calling `line`).
   */
  oversized(): void {
    this.counters.linesRead++;
    this.counters.oversizedLines++;
  }

  /**
   * A line from a LineSplitter (arguments as it gives them) of a `tcp://`, `tls://` or HTTP body. A canonical JSON
   * line is written from its bytes, with the peer's `client` (the fast path, as a file collector's lines); others
   * are parsed and built. A differential test holds the two to the same bytes.
   */
  line(text: string, flags: number, peer: Peer, bytes?: Buffer, bytesStart = 0, bytesEnd = 0): void {
    this.counters.linesRead++;
    if ((flags & LineFlags.TRUNCATED) !== 0) {
      // Half a JSON object is worse than none: drop it, counted.
      this.counters.oversizedLines++;
      return;
    }
    if ((flags & LineFlags.INVALID_UTF8) !== 0) this.counters.invalidUtf8++;
    else if (this.writer !== undefined && bytes !== undefined) {
      let plan = peer.plan;
      if (plan === undefined) {
        const client = { key: "client", value: { ip: peer.ip, port: peer.port } };
        plan = peer.plan = planFastRecord({ source: this.options.source, fields: this.options.fields }, client) ?? null;
      }
      if (plan !== null && fastJsonRecordBytes(bytes, bytesStart, bytesEnd, plan, this.ctx.now as string, undefined, this.writer)) {
        if (!this.hasCredit) this.onOutOfCredit();
        return;
      }
    }
    if ((flags & LineFlags.LAZY_TEXT) !== 0) text = bytes!.toString("utf8", bytesStart, bytesEnd);
    const parsed = this.parser(text);
    if (parsed.blank === true) {
      this.counters.blankLines++;
      return;
    }
    if (parsed.error !== undefined) this.counters.parseErrors++;
    if (parsed.droppedKeys !== undefined) this.counters.droppedKeys += parsed.droppedKeys;
    this.ship(buildRecord(parsed, this.ctx), peer);
  }

  /**
   * A `udp://` datagram: one message without its trailing newlines or NULs, taken as a line is (the parsers strip a
   * CR; a datagram is at most 64 KiB, under every `maxMessageBytes`).
   */
  datagram(payload: Buffer, peer: Peer): void {
    let end = payload.length;
    while (end > 0 && (payload[end - 1] === 10 || payload[end - 1] === 0)) end--;
    const valid = isUtf8(payload.subarray(0, end));
    const flags = valid ? 0 : LineFlags.INVALID_UTF8;
    if (valid && this.writer !== undefined) this.line("", flags | LineFlags.LAZY_TEXT, peer, payload, 0, end);
    else this.line(payload.toString("utf8", 0, end), flags, peer);
  }

  /** One GELF message: a UDP payload (reassembled) or a TCP frame; compressed or not. */
  gelf(payload: Buffer, peer: Peer): void {
    this.counters.linesRead++;
    const bytes = decompressGelf(payload, this.options.maxGelfBytes);
    if (typeof bytes === "string") {
      this.counters[bytes]++;
      return;
    }
    // Shipped anyway, with U+FFFD for the bad bytes, as lines are; but counted.
    if (!isUtf8(bytes)) this.counters.invalidUtf8++;
    const parsed = parseGelf(bytes.toString("utf8"));
    if (typeof parsed === "string") {
      this.counters[parsed]++;
      return;
    }
    this.ship(buildRecord(parsed, this.ctx), peer);
  }

  private ship(record: LogRecord, peer: Peer): void {
    const client = record["client"];
    // The connection's address is authoritative; a sender's own non-object `client` value is kept as `original`.
    record["client"] =
      client === undefined
        ? { ip: peer.ip, port: peer.port }
        : typeof client === "object" && client !== null && !Array.isArray(client)
          ? { ...(client as Record<string, unknown>), ip: peer.ip, port: peer.port }
          : { original: client, ip: peer.ip, port: peer.port };
    let json: string;
    try {
      json = JSON.stringify(record);
    } catch {
      // Only a cyclic or BigInt value could get here, and JSON input has neither; keep the message anyway.
      this.counters.parseErrors++;
      json = JSON.stringify({ "@timestamp": record["@timestamp"], message: String(record.message), client: record["client"] });
    }
    if (!this.out.push(json) || !this.hasCredit) this.onOutOfCredit();
  }
}
