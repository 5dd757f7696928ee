// The host dies by SIGKILL: its collectors notice and exit; a new host with the same checkpointDir resumes.
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait-for.js";

const fixture = fileURLToPath(new URL("../fixtures/host-tail.ts", import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const dir = mkdtempSync(join(tmpdir(), "cla-hostkill-"));
const hosts: ChildProcess[] = [];
afterAll(() => {
  for (const h of hosts) h.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

function startHost(out: string): Promise<{ host: ChildProcess; collectorPid: number }> {
  const host = spawn(process.execPath, ["--import", tsx, fixture, join(dir, "app.log"), out, join(dir, "cp")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  hosts.push(host);
  let err = "";
  host.stderr!.on("data", (d: Buffer) => (err += d));
  return new Promise((resolve, reject) => {
    let buf = "";
    host.stdout!.on("data", (d: Buffer) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve({ host, collectorPid: (JSON.parse(buf.slice(0, nl)) as { collectorPid: number }).collectorPid });
    });
    host.once("exit", (code) => reject(new Error(`host exited (${code}) before ready: ${err}`)));
  });
}

/** Alive and not a zombie (a reaped-later zombie has already exited). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return existsSync(`/proc/${pid}`);
  }
}

const numbers = (file: string): number[] =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => (JSON.parse(l) as { n: number }).n)
    : [];

describe("host SIGKILL", () => {
  it("children exit within 2 s; a new host with the same checkpointDir resumes with nothing missing", async () => {
    const total = 30_000;
    const text = Array.from({ length: total }, (_, n) => JSON.stringify({ msg: `line ${n}`, n }) + "\n");
    const third = total / 3;
    writeFileSync(join(dir, "app.log"), text.slice(0, third).join(""));
    // ends[n] = byte offset after line n: a checkpoint at offset o covers every line with ends[n] ≤ o.
    const ends: number[] = [];
    text.reduce((off, line, n) => (ends[n] = off + Buffer.byteLength(line)), 0);
    const committed = (): number => {
      try {
        const cp = JSON.parse(readFileSync(join(dir, "cp", "tail.json"), "utf8")) as { files: Array<{ offset: number }> };
        return cp.files[0]?.offset ?? 0;
      } catch {
        return 0;
      }
    };
    const out1 = join(dir, "out1.ndjson");
    const out2 = join(dir, "out2.ndjson");
    const a = await startHost(out1);
    expect(alive(a.collectorPid)).toBe(true);
    await waitFor(() => numbers(out1).length >= 3_000, { timeout: 20_000, message: "3000 lines shipped by the first host" });
    await waitFor(() => committed() > 0, { timeout: 10_000, message: "a checkpoint written by the first host" });
    // Mid-stream: more lines land while the first host is reading, and it dies among them.
    appendFileSync(join(dir, "app.log"), text.slice(third, 2 * third).join(""));
    a.host.kill("SIGKILL");
    const checkpoint = committed();
    // And the rest arrives while no host is running at all.
    appendFileSync(join(dir, "app.log"), text.slice(2 * third).join(""));
    const coveredLines = ends.filter((e) => e <= checkpoint).length;
    await waitFor(() => !alive(a.collectorPid), { timeout: 2_000, message: `collector ${a.collectorPid} gone after its host was SIGKILLed` });

    const b = await startHost(out2);
    const seen = (): number[] => [...numbers(out1), ...numbers(out2)];
    await waitFor(() => new Set(seen()).size === total, {
      timeout: 30_000,
      message: () => `all ${total} numbers across both hosts, have ${new Set(seen()).size}`,
    });
    b.host.kill("SIGTERM");
    await new Promise((r) => b.host.once("exit", r));
    await waitFor(() => !alive(b.collectorPid), { timeout: 5_000, message: "second host's collector gone after a clean stop" });
    const all = seen();
    const unique = new Set(all).size;
    console.info(`[host SIGKILL] sent ${total}, unique ${unique}, duplicates ${all.length - unique}, missing ${total - unique}`);
    expect(unique).toBe(total);
    // The second host started at the first one's checkpoint: nothing it covered came again, and the replay
    // (duplicates) is limited to what the first host shipped after its last checkpoint write.
    expect(coveredLines).toBeGreaterThan(0);
    expect(numbers(out2).length).toBeGreaterThanOrEqual(third);
    expect(numbers(out2).filter((n) => n < coveredLines)).toEqual([]);
    expect(all.length - unique).toBeLessThanOrEqual(numbers(out1).length - coveredLines);
  });
});
