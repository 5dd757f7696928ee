// The network collector's counters in one place, so every listener uses the same names and STATS sends them as is.
// Each malformed or dropped input is counted by reason; nothing is dropped without a count.

/** Counters sent to the host (they land in `report.sources[name]` and its `collector` map). */
export interface NetworkCounters {
  /** Messages received: lines, GELF frames and GELF datagrams (after reassembly), well-formed or not. */
  linesRead: number;
  /** Bytes received on every listener (compressed and chunk headers included). */
  bytesRead: number;
  /** Lines the parser could not parse; they are still shipped, as plain messages with `error.type: "parse"`. */
  parseErrors: number;
  /** `__proto__` keys removed from parsed input (they could pollute prototypes); the rest of the record is kept. */
  droppedKeys: number;
  blankLines: number;
  /** Lines and GELF messages with invalid UTF-8 (shipped, with U+FFFD in place of the bad bytes). */
  invalidUtf8: number;
  /**
   * Lines longer than `maxMessageBytes`: dropped. On TCP/TLS counted as soon as a line goes over the limit, so an
   * endless line shows up before (and whether or not) its newline ever comes.
   */
  oversizedLines: number;
  datagrams: number;
  /** UDP messages dropped because the host had no credit (UDP cannot slow a sender down). */
  udpDroppedNoCredit: number;
  /**
   * Datagrams the kernel dropped because the socket's receive buffer was full (the collector did not read fast
   * enough). Read from `/proc/net/udp` once a second: Linux only, 0 elsewhere.
   */
  udpKernelDrops: number;
  connections: number;
  connectionErrors: number;
  /** Connections closed at once because a listener already had `maxConnections` open. */
  connectionsRefused: number;
  /** TCP/TLS connections closed after `idleTimeoutMs` without a byte. */
  idleTimeouts: number;
  /** TCP/TLS connections closed because their partial message would take the total over `maxPartialBytes`. */
  partialOverBudget: number;
  /**
   * Incomplete lines or frames discarded because their connection ended without a clean end of stream: reset,
   * error, idle timeout, over budget, or the collector stopping. (A clean end ships the tail as a last message.)
   */
  partialDiscarded: number;
  /** TLS handshakes that failed or did not finish within `tls.handshakeTimeoutMs` (the connection is closed). */
  tlsErrors: number;
  /**
   * Syslog connections with octet counting (RFC 6587) closed because a frame did not start with its length: the
   * rest of the stream cannot be framed.
   */
  framingErrors: number;
  /** Times the collector stopped reading because the host ran out of credit. */
  pauses: number;
  gelfInvalidJson: number;
  gelfNotAnObject: number;
  /** Neither a `short_message` nor a `message` string. */
  gelfMissingMessage: number;
  /** `host` present but not a non-blank string. */
  gelfInvalidHost: number;
  gelfDecompressFailed: number;
  /** GELF frames or (decompressed, reassembled) messages over the size limit: dropped (a TCP frame as soon as it goes over). */
  gelfTooLarge: number;
  /** Chunks with a bad header: too short, count 0 or over 128, sequence number ≥ count, or a count that changed. */
  gelfChunkInvalid: number;
  /** A second copy of a chunk slot (the first one wins). */
  gelfChunkDuplicate: number;
  /** Chunked messages still incomplete when their time ran out (or at stop). */
  gelfChunksExpired: number;
  /** Chunked messages dropped to keep reassembly within `maxPendingMessages` / `maxPendingBytes`. */
  gelfChunksEvicted: number;
  httpRequests: number;
  /** 404 (wrong path), 405 (not POST), 415 (unknown Content-Encoding), 400 (undecodable body). */
  httpBadRequest: number;
  /** 413: body over `http.maxBodyBytes`. */
  httpTooLarge: number;
  /** 429: no credit within `http.creditWaitMs`. */
  httpThrottled: number;
  /** 429: credit was there, but every body-reading slot stayed busy for `http.creditWaitMs`. */
  httpSlotsBusy: number;
  /**
   * 408: a body brought less than 1 KiB in `http.bodyIdleTimeoutMs` (stalled or trickling), or was read for longer than
   * `http.bodyTimeoutMs` in all; the connection is closed.
   */
  httpBodyTimeouts: number;
  /** A connection that did not send a whole request's headers within `http.headersTimeoutMs`; closed. */
  httpHeaderTimeouts: number;
  /** The client went away before its body was read and shipped (no 202 sent; the rest of the body is not shipped). */
  httpAborted: number;
}

export function newCounters(): NetworkCounters {
  return {
    linesRead: 0,
    bytesRead: 0,
    parseErrors: 0,
    droppedKeys: 0,
    blankLines: 0,
    invalidUtf8: 0,
    oversizedLines: 0,
    datagrams: 0,
    udpDroppedNoCredit: 0,
    udpKernelDrops: 0,
    connections: 0,
    connectionErrors: 0,
    connectionsRefused: 0,
    idleTimeouts: 0,
    partialOverBudget: 0,
    partialDiscarded: 0,
    tlsErrors: 0,
    framingErrors: 0,
    pauses: 0,
    gelfInvalidJson: 0,
    gelfNotAnObject: 0,
    gelfMissingMessage: 0,
    gelfInvalidHost: 0,
    gelfDecompressFailed: 0,
    gelfTooLarge: 0,
    gelfChunkInvalid: 0,
    gelfChunkDuplicate: 0,
    gelfChunksExpired: 0,
    gelfChunksEvicted: 0,
    httpRequests: 0,
    httpBadRequest: 0,
    httpTooLarge: 0,
    httpThrottled: 0,
    httpSlotsBusy: 0,
    httpBodyTimeouts: 0,
    httpHeaderTimeouts: 0,
    httpAborted: 0,
  };
}

/** Reasons summed into `malformed`: input that was wrong on arrival (whether it was dropped or shipped flagged). */
const MALFORMED: ReadonlyArray<keyof NetworkCounters> = [
  "parseErrors",
  "oversizedLines",
  "gelfInvalidJson",
  "gelfNotAnObject",
  "gelfMissingMessage",
  "gelfInvalidHost",
  "gelfDecompressFailed",
  "gelfTooLarge",
  "gelfChunkInvalid",
  "framingErrors",
];

/** The STATS payload: every counter plus `malformed`, their total, for one alert rule. */
export function snapshotCounters(c: NetworkCounters): Record<string, number> {
  let malformed = 0;
  for (const k of MALFORMED) malformed += c[k];
  return { ...c, malformed };
}
