// File identity: device + inode says "same file" while it exists; a hash of its first bytes catches inode reuse and
// recognizes the copy that copytruncate leaves behind.
//
// The fingerprint covers the first min(size, fingerprintBytes) bytes and remembers how many it covered, so a file
// shorter than fingerprintBytes still has a (prefix) fingerprint that grows with it. Two fingerprints "match" when
// the longer file's first `bytes` bytes hash to the shorter one's hash (a prefix check).
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";

export interface Fingerprint {
  /** How many leading bytes the hash covers (0 for an empty file). */
  bytes: number;
  /** sha256 of those bytes, base64url, first 22 characters (132 bits: collisions are not a concern). */
  hash: string;
}

/** `dev:ino` as decimal strings: inode numbers can exceed 2^53 on some file systems. */
export function identityKey(device: bigint | string, inode: bigint | string): string {
  return `${device}:${inode}`;
}

/**
 * Two birth times (statx `btime` in ns, decimal; "0" where the file system keeps none) that tell two files apart:
 * both known and different. An inode freed by a deletion and taken by a new file gives it a later birth.
 */
export function bornApart(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && a !== "0" && b !== "0" && a !== b;
}

/**
 * Whether this process has seen a real birth time: one apart from its change time. Where statx is missing (old
 * kernels, some seccomp profiles) libuv reports the change time as the birth time, which moves with every write:
 * taken for a birth, it would make every file written since look new. Such a birth never differs from the change
 * time; a real one does for any file (or directory) changed after it was made.
 */
let realBirths = false;

/**
 * A file's birth time for bornApart, or "0" when it is not known: the file system keeps none, or it equals the
 * change time before a real birth time was seen (see realBirths).
 */
export function bornOf(s: { birthtimeNs: bigint; ctimeNs: bigint }): string {
  if (s.birthtimeNs === 0n) return "0";
  if (s.birthtimeNs !== s.ctimeNs) realBirths = true;
  else if (!realBirths) return "0";
  return String(s.birthtimeNs);
}

export function hashPrefix(bytes: Buffer, length: number): string {
  return createHash("sha256").update(bytes.subarray(0, length)).digest("base64url").slice(0, 22);
}

/** Reads up to `max` leading bytes through an open handle (pread at 0: the read position is untouched). */
export async function readPrefix(handle: FileHandle, max: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(max);
  let filled = 0;
  while (filled < max) {
    const { bytesRead } = await handle.read(buffer, filled, max - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

export function fingerprintOf(prefix: Buffer, max: number): Fingerprint {
  const bytes = Math.min(prefix.length, max);
  return { bytes, hash: hashPrefix(prefix, bytes) };
}

/**
 * Does the file whose leading bytes are `prefix` carry the content fingerprinted as `known`? False when the file is
 * now shorter than what was fingerprinted (it was truncated or replaced).
 */
export function prefixMatches(prefix: Buffer, known: Fingerprint): boolean {
  if (prefix.length < known.bytes) return false;
  return hashPrefix(prefix, known.bytes) === known.hash;
}
