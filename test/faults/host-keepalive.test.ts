// A host whose only work is the aggregator: what the aggregator still has to do (restart a crashed collector, open a
// sink again after a failure) keeps the process alive, and nothing does once stop() has finished.
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const fixture = fileURLToPath(new URL("../fixtures/host-keepalive.ts", import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/** Run the fixture host to its own exit (killed after 30 s: then the lines say how far it got). */
function runHost(mode: string): Promise<{ lines: Array<Record<string, unknown>>; stderr: string; killed: boolean }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", tsx, fixture, mode], { timeout: 30_000 }, (error, stdout, stderr) => {
      const lines = stdout
        .split("\n")
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ lines, stderr, killed: error?.killed === true });
    });
  });
}

describe("a host with nothing else to do", () => {
  it("stays alive while a collector that exited waits for its restart, and exits by itself after stop()", async () => {
    const r = await runHost("restart");
    // Before: the unref'd restart timer let the host exit (code 0, state running) at the command's first exit.
    expect(r.lines, r.stderr).toEqual([
      { sent: 3, delivered: 3 },
      { exit: 0, state: "stopped" },
    ]);
  });

  it("stays alive between open() attempts of a sink added while running, which then delivers", async () => {
    const r = await runHost("sink-open");
    expect(r.lines, r.stderr).toEqual([
      { written: true },
      { sent: 1, delivered: 1 },
      { opens: 3 },
      { exit: 0, state: "stopped" },
    ]);
  });

  it.each([
    ["removed", "sink-remove", { removed: true, opens: 1 }, "running"],
    ["stopped", "sink-stop", { stopped: true, opens: 1 }, "stopped"],
  ])("is not held by the open() backoff of a sink once it is %s", async (_how, mode, line, state) => {
    const r = await runHost(mode);
    // A 60 s backoff still armed would keep it alive until the 30 s kill. Removed, nothing is left to do: the host
    // exits with its aggregator still running, as it would with no sink at all.
    expect(r.killed, JSON.stringify(r.lines)).toBe(false);
    expect(r.lines, r.stderr).toEqual([line, { timers: 0 }, { exit: 0, state }]);
  });
});
