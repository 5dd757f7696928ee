// Message-size defaults of the network listeners, shared with the host's option checks (network-source.ts), so the
// two can never disagree. No imports: the host loads this without any listener code.

/** GELF TCP frames are uncompressed JSON: Graylog's default frame limit is 2 MiB; lines default to 1 MiB. */
export function defaultStreamMessageBytes(protocol: string): number {
  return protocol === "gelf+tcp" || protocol === "gelf+tls" ? 2 * 1024 * 1024 : 1024 * 1024;
}
