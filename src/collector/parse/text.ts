// Small string helpers every parser needs on the per-line path; written with charCodeAt to avoid regex and copies.

/** The line without one trailing `\r` (CRLF input whose splitter did not strip it). */
export function stripCR(line: string): string {
  return line.length > 0 && line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
}

/** Empty or whitespace only. Checks the first character before falling back to trim(), so most lines cost one read. */
export function isBlank(line: string): boolean {
  if (line.length === 0) return true;
  const c = line.charCodeAt(0);
  if (c > 32 && c !== 0xa0 && c < 0x1680) return false;
  return line.trim().length === 0;
}
