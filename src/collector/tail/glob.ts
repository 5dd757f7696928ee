// A small glob matcher and directory walker on node:fs, because fs.glob is not in Node 20 and we take no new dependency.
//
// Syntax: `*` (any run of characters except `/`, leading dots included, as Go's filepath.Glob that Filebeat uses),
// `?` (one character except `/`), `[abc]` / `[a-z]` / `[!abc]` (one character of a class), `**` as a whole path
// segment (zero or more directories), `{a,b}` (alternatives, nested allowed, may contain `/`). A backslash escapes the
// next character. Relative patterns resolve against `cwd`.
//
// The walker reads only the directories a pattern can reach: literal segments are joined without a readdir, and only
// `**` recurses. Symlinked directories are followed, with a loop guard on device+inode of the directories on the
// current descent, so a symlink loop is reported once and never hangs the scan.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";

/** Something the walker could not read. Missing directories are not problems (a glob may match nothing yet). */
export interface GlobProblem {
  kind: "symlink-loop" | "access-denied" | "io";
  path: string;
  error?: NodeJS.ErrnoException;
}

const MAX_BRACE_EXPANSIONS = 1024;
const MAX_DEPTH = 64;

/** Expands `{a,b}` alternatives (nested allowed). A brace group without a top-level comma stays literal. */
export function expandBraces(pattern: string): string[] {
  const out: string[] = [];
  expandInto(pattern, out);
  return out;
}

function expandInto(pattern: string, out: string[]): void {
  const group = findBraceGroup(pattern);
  if (group === undefined) {
    out.push(pattern);
    return;
  }
  const { open, close, commas } = group;
  const prefix = pattern.slice(0, open);
  const suffix = pattern.slice(close + 1);
  let start = open + 1;
  for (const comma of [...commas, close]) {
    expandInto(prefix + pattern.slice(start, comma) + suffix, out);
    if (out.length > MAX_BRACE_EXPANSIONS) {
      throw new RangeError(`brace expansion of ${JSON.stringify(pattern)} yields more than ${MAX_BRACE_EXPANSIONS} patterns`);
    }
    start = comma + 1;
  }
}

function findBraceGroup(pattern: string): { open: number; close: number; commas: number[] } | undefined {
  for (let open = 0; open < pattern.length; open++) {
    const c = pattern[open];
    if (c === "\\") {
      open++;
      continue;
    }
    if (c !== "{") continue;
    let depth = 0;
    const commas: number[] = [];
    for (let i = open; i < pattern.length; i++) {
      const d = pattern[i];
      if (d === "\\") {
        i++;
      } else if (d === "{") {
        depth++;
      } else if (d === "}") {
        depth--;
        if (depth === 0) {
          if (commas.length > 0) return { open, close: i, commas };
          break;
        }
      } else if (d === "," && depth === 1) {
        commas.push(i);
      }
    }
  }
  return undefined;
}

/** True when a path segment needs matching rather than joining. */
export function hasMagic(segment: string): boolean {
  return /[*?[\\]/.test(segment);
}

/** Regex source for one path segment (no `/` inside). */
function segmentSource(segment: string): string {
  let src = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === "\\" && i + 1 < segment.length) {
      src += escapeRegExp(segment[++i]!);
    } else if (c === "*") {
      src += "[^/]*";
    } else if (c === "?") {
      src += "[^/]";
    } else if (c === "[") {
      const close = segment.indexOf("]", i + 2);
      if (close === -1) {
        src += "\\[";
        continue;
      }
      let body = segment.slice(i + 1, close);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      src += `[${negate ? "^/" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = close;
    } else {
      src += escapeRegExp(c);
    }
  }
  return src;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Compiles one path segment (braces already expanded) to an anchored regex. */
export function segmentRegExp(segment: string): RegExp {
  return new RegExp(`^${segmentSource(segment)}$`);
}

/**
 * Compiles a whole glob (braces expanded first) to one anchored regex over `/`-separated paths. Used for `exclude`
 * and by tests; discovery uses the walker.
 */
export function globRegExp(pattern: string): RegExp {
  const alternatives = expandBraces(pattern).map((p) => {
    const segments = p.split("/");
    let src = "";
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const last = i === segments.length - 1;
      if (seg === "**") {
        // `a/**/b` matches a/b, a/x/b, a/x/y/b; a trailing `a/**` matches everything below a.
        src += last ? "(?:[^/]+(?:/[^/]+)*)?" : "(?:[^/]+/)*";
      } else {
        src += segmentSource(seg) + (last ? "" : "/");
      }
    }
    return src;
  });
  return new RegExp(`^(?:${alternatives.join("|")})$`);
}

/** Splits an absolute pattern into the literal base directory and the remaining segments. */
function splitBase(absolutePattern: string): { base: string; segments: string[] } {
  const parts = absolutePattern.split("/").filter((s, i) => s !== "" || i === 0);
  const baseParts: string[] = [];
  let i = 0;
  for (; i < parts.length - 1; i++) {
    if (hasMagic(parts[i]!)) break;
    baseParts.push(parts[i]!);
  }
  return { base: baseParts.join("/") || "/", segments: parts.slice(i) };
}

/**
 * Finds the paths matched by `patterns` (deduplicated, sorted). Entries are not stat'ed beyond what the walk needs:
 * the caller decides what is a regular file. Problems (EACCES, symlink loops) go to `onProblem`; missing
 * directories are silent.
 */
export async function scanGlobs(
  patterns: readonly string[],
  cwd: string,
  onProblem: (problem: GlobProblem) => void,
): Promise<string[]> {
  const found = new Set<string>();
  for (const pattern of patterns) {
    for (const expanded of expandBraces(pattern)) {
      const absolute = path.resolve(cwd, expanded);
      const { base, segments } = splitBase(absolute);
      await walk(base, segments, 0, [], found, onProblem);
    }
  }
  return [...found].sort();
}

async function walk(
  dir: string,
  segments: string[],
  index: number,
  ancestors: string[],
  found: Set<string>,
  onProblem: (problem: GlobProblem) => void,
): Promise<void> {
  if (index === segments.length) {
    found.add(dir);
    return;
  }
  const segment = segments[index]!;
  const last = index === segments.length - 1;
  if (segment === "**") {
    if (ancestors.length >= MAX_DEPTH) return;
    // Zero directories first, then descend one level and retry the same `**`.
    await walk(dir, segments, index + 1, ancestors, found, onProblem);
    const identity = await dirIdentity(dir, onProblem);
    if (identity === undefined) return;
    if (ancestors.includes(identity)) {
      onProblem({ kind: "symlink-loop", path: dir });
      return;
    }
    const subdirs = await listSubdirectories(dir, onProblem);
    const nextAncestors = [...ancestors, identity];
    for (const sub of subdirs) await walk(sub, segments, index, nextAncestors, found, onProblem);
    return;
  }
  // A literal segment is joined without a readdir, except a final one below a wildcard: `**/app.log` would
  // otherwise yield one non-existent candidate per directory.
  if (!hasMagic(segment) && !(last && index > 0)) {
    const next = path.join(dir, segment.replace(/\\(.)/g, "$1"));
    if (last) found.add(next);
    else await walk(next, segments, index + 1, ancestors, found, onProblem);
    return;
  }
  const names = await listNames(dir, onProblem);
  const re = segmentRegExp(segment);
  for (const name of names) {
    if (!re.test(name)) continue;
    const next = path.join(dir, name);
    if (last) found.add(next);
    else await walk(next, segments, index + 1, ancestors, found, onProblem);
  }
}

async function listNames(dir: string, onProblem: (problem: GlobProblem) => void): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    reportFsError(dir, error, onProblem);
    return [];
  }
}

async function listSubdirectories(dir: string, onProblem: (problem: GlobProblem) => void): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    reportFsError(dir, error, onProblem);
    return [];
  }
  const out: string[] = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      out.push(full);
    } else if (entry.isSymbolicLink()) {
      // Follow links to directories; the ancestor guard in walk() stops loops.
      try {
        if ((await stat(full)).isDirectory()) out.push(full);
      } catch (error) {
        reportFsError(full, error, onProblem);
      }
    }
  }
  return out;
}

async function dirIdentity(dir: string, onProblem: (problem: GlobProblem) => void): Promise<string | undefined> {
  try {
    const s = await stat(dir, { bigint: true });
    return s.isDirectory() ? `${s.dev}:${s.ino}` : undefined;
  } catch (error) {
    reportFsError(dir, error, onProblem);
    return undefined;
  }
}

function reportFsError(p: string, error: unknown, onProblem: (problem: GlobProblem) => void): void {
  const e = error as NodeJS.ErrnoException;
  if (e.code === "ENOENT" || e.code === "ENOTDIR") return;
  if (e.code === "ELOOP") onProblem({ kind: "symlink-loop", path: p, error: e });
  else if (e.code === "EACCES" || e.code === "EPERM") onProblem({ kind: "access-denied", path: p, error: e });
  else onProblem({ kind: "io", path: p, error: e });
}
