// Every example runs as a test, so the examples never rot (and `npm start` stays green).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const scratch = mkdtempSync(join(tmpdir(), "cla-examples-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(file: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", tsx, file], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (out += d));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, out }));
  });
}

describe("examples", () => {
  it("quickstart (npm start) runs, restarts the crashing service, and prints a report whose numbers add up", async () => {
    const { code, out } = await run("examples/quickstart.ts", { QUICKSTART_DURATION_MS: "5000", QUICKSTART_DIR: scratch });
    expect(code, out).toBe(0);
    expect(out).toContain("Delivery report");
    expect(out).toMatch(/restarted \(#1/);
    const totals = JSON.parse(/totals: (\{.*\})/.exec(out)![1]!) as Record<string, number>;
    expect(totals.pending).toBe(0);
    expect(totals.dropped).toBe(0);
    expect(totals.received).toBeGreaterThan(1000);
    expect(totals.delivered).toBe(totals.received);
    // the file sink holds every record, one JSON object per line
    const lines = readFileSync(join(scratch, "quickstart.ndjson"), "utf8").trim().split("\n");
    expect(lines.length).toBeGreaterThan(1000);
    for (const l of lines.slice(0, 50)) expect(JSON.parse(l)).toHaveProperty("@timestamp");
  });

  const others = readdirSync(join(root, "examples")).filter((f) => f.endsWith(".ts") && f !== "quickstart.ts");
  it.each(others)("%s runs to completion with exit code 0", async (file) => {
    const { code, out } = await run(join("examples", file), { EXAMPLE_DIR: scratch });
    expect(code, out).toBe(0);
  });
});
