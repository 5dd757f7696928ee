// The tail glob matcher: pattern semantics (table) and the directory walker on a real temp tree.
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expandBraces, globRegExp, scanGlobs, type GlobProblem } from "../../../src/collector/tail/glob.js";

describe("globRegExp", () => {
  it.each([
    ["/var/log/*.log", "/var/log/app.log", true],
    ["/var/log/*.log", "/var/log/.hidden.log", true],
    ["/var/log/*.log", "/var/log/sub/app.log", false],
    ["/var/log/app.log?", "/var/log/app.log1", true],
    ["/var/log/app.log?", "/var/log/app.log", false],
    ["/var/log/app.log*", "/var/log/app.log", true],
    ["/var/log/app.log*", "/var/log/app.log.1", true],
    ["/var/log/**/*.log", "/var/log/a.log", true],
    ["/var/log/**/*.log", "/var/log/x/y/z/a.log", true],
    ["/var/log/**", "/var/log/x/y", true],
    ["/var/**/log/*.log", "/var/log/a.log", true],
    ["/var/log/{nginx,apache}/*.log", "/var/log/apache/err.log", true],
    ["/var/log/{nginx,apache}/*.log", "/var/log/mysql/err.log", false],
    ["/var/log/app.{log,{txt,out}}", "/var/log/app.out", true],
    ["/var/log/app-[0-9].log", "/var/log/app-7.log", true],
    ["/var/log/app-[!0-9].log", "/var/log/app-7.log", false],
    ["/var/log/app-[!0-9].log", "/var/log/app-x.log", true],
    ["/var/log/a\\*b.log", "/var/log/a*b.log", true],
    ["/var/log/a\\*b.log", "/var/log/axb.log", false],
    ["/var/log/app.log", "/var/log/app_log", false],
  ])("%s vs %s → %s", (pattern, candidate, expected) => {
    expect(globRegExp(pattern).test(candidate)).toBe(expected);
  });
});

describe("expandBraces", () => {
  it("expands alternatives, nested groups and leaves comma-less braces literal", () => {
    expect(expandBraces("a.{x,y{1,2}}")).toEqual(["a.x", "a.y1", "a.y2"]);
    expect(expandBraces("{a,b}/{c,d}")).toEqual(["a/c", "a/d", "b/c", "b/d"]);
    expect(expandBraces("lit{eral}")).toEqual(["lit{eral}"]);
  });

  it("refuses an explosion of alternatives", () => {
    expect(() => expandBraces("{a,b,c,d}".repeat(6))).toThrow(RangeError);
  });
});

describe("scanGlobs on a real tree", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), "cla-glob-"));
    for (const f of ["a.log", "a.log.1", "b.txt", "x/c.log", "x/y/d.log", "nginx/e.log", "apache/f.log", "mysql/g.log"]) {
      mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      writeFileSync(path.join(root, f), "");
    }
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const rel = (paths: string[]) => paths.map((p) => path.relative(root, p));

  it.each([
    [["*.log"], ["a.log"]],
    [["a.log*"], ["a.log", "a.log.1"]],
    [["**/*.log"], ["a.log", "apache/f.log", "mysql/g.log", "nginx/e.log", "x/c.log", "x/y/d.log"]],
    [["{nginx,apache}/*.log"], ["apache/f.log", "nginx/e.log"]],
    [["x/**/d.log", "b.txt"], ["b.txt", "x/y/d.log"]],
    [["nothing/here/*.log"], []],
  ])("%j → %j", async (patterns, expected) => {
    const problems: GlobProblem[] = [];
    expect(rel(await scanGlobs(patterns, root, (p) => problems.push(p)))).toEqual(expected);
    expect(problems).toEqual([]);
  });

  it("returns a literal path even when it does not exist yet (the caller stats it)", async () => {
    expect(rel(await scanGlobs(["later.log"], root, () => undefined))).toEqual(["later.log"]);
  });

  it("reports a directory symlink loop under ** once per loop and terminates", async () => {
    symlinkSync("..", path.join(root, "x", "up"));
    const problems: GlobProblem[] = [];
    const found = rel(await scanGlobs(["**/d.log"], root, (p) => problems.push(p)));
    expect(found).toContain("x/y/d.log");
    expect(found.length).toBeLessThan(10);
    expect(problems.length).toBeGreaterThanOrEqual(1);
    expect(problems.every((p) => p.kind === "symlink-loop")).toBe(true);
  });
});
