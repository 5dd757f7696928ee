// Input is decoded in slices of a few dozen messages, with a credit check between slices, so a listener that runs
// out of credit stops within a slice: not at the end of a 64 KiB read, nor of a 10 MiB HTTP body (which once pushed
// 3.5 million records past an 8,192-record window, and the host kept them all in memory).
//
//   buf ─▶ [≤ limits.messages delimiters or ≤ limits.bytes] ─▶ decoder ─▶ credit? ─yes─▶ next slice
//                                                                        └no──▶ stop here; the caller keeps the rest

/** Delimiters per slice: what a listener may push past its credit is at most this many records. */
export const SLICE_MESSAGES = 64;
/** Bytes per slice when delimiters are rarer (long lines). */
export const SLICE_BYTES = 64 * 1024;

/** A slice's most delimiters and bytes. */
export interface SliceLimits {
  readonly messages: number;
  readonly bytes: number;
}

export const DEFAULT_SLICES: SliceLimits = { messages: SLICE_MESSAGES, bytes: SLICE_BYTES };

/**
 * Slices for a credit window: a sixteenth of its records and a thirty-second of its bytes, within the defaults.
 * With a small window, a whole slice past the credit would otherwise be most of it (and all of a UDP reserve).
 */
export function slicesFor(window: { readonly records: number; readonly bytes: number }): SliceLimits {
  return {
    messages: Math.max(1, Math.min(SLICE_MESSAGES, Math.floor(window.records / 16))),
    bytes: Math.max(1024, Math.min(SLICE_BYTES, Math.floor(window.bytes / 32))),
  };
}

/**
 * End of the slice of `buf` that starts at `pos`: just after its `limits.messages`-th delimiter; else just after the
 * last delimiter within `limits.bytes` (so that lines stay whole and take the splitter's copy-free path); else
 * `limits.bytes` on, or the end. Delimiters are `\n`, and NUL too when `nul` (GELF TCP framing).
 */
export function sliceEnd(buf: Buffer, pos: number, nul: boolean, limits: SliceLimits = DEFAULT_SLICES): number {
  const limit = Math.min(buf.length, pos + limits.bytes);
  // Each delimiter is searched again only once passed, and never beyond `limit`.
  const win = buf.subarray(pos, limit);
  let nl = win.indexOf(10);
  let z = nul ? win.indexOf(0) : -1;
  let last = -1;
  for (let n = 0; n < limits.messages; n++) {
    const d = nl === -1 ? z : z === -1 ? nl : Math.min(nl, z);
    if (d === -1) return limit === buf.length || last === -1 ? limit : pos + last;
    last = d + 1;
    if (d === nl) nl = win.indexOf(10, last);
    if (d === z) z = win.indexOf(0, last);
  }
  return pos + last;
}

/**
 * Feed `buf` from `pos` to `push`, slice by slice, while `go()` holds (checked before each slice). Returns where it
 * stopped: `buf.length` when all of it went in.
 */
export function feedSlices(
  buf: Buffer,
  pos: number,
  nul: boolean,
  push: (slice: Buffer) => void,
  go: () => boolean,
  limits: SliceLimits = DEFAULT_SLICES,
): number {
  while (pos < buf.length && go()) {
    const end = sliceEnd(buf, pos, nul, limits);
    push(buf.subarray(pos, end));
    pos = end;
  }
  return pos;
}
