// CommandSource through real collector children: records arrive, stderr is tagged, crashes restart, loops trip.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Aggregator, CollectorError, CommandSource, MemorySink, type SourceExitEvent } from "../../../src/index.js";
import { watchSourceEnds } from "../../helpers/source-ends.js";
import { waitFor } from "../../helpers/wait-for.js";

const fixture = fileURLToPath(new URL("../../fixtures/emit-lines.mjs", import.meta.url));

/**
 * Incarnation k (counted in files in `dir`) prints lines "k:0", "k:1"…: the first `first` of them, then, once the
 * file go<k> exists, `rest` more; then it creates done<k> and exits. Incarnations after the first print all of their
 * lines at once and stay.
 */
const TWO_PARTS = `
const fs = require("node:fs");
const [first, rest, dir] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]];
let k = 1;
while (fs.existsSync(dir + "/run" + k)) k++;
fs.writeFileSync(dir + "/run" + k, "");
const print = (from, to) => { let s = ""; for (let i = from; i < to; i++) s += k + ":" + i + "\\n"; process.stdout.write(s); };
print(0, first);
if (k > 1) {
  print(first, first + rest);
  setInterval(() => {}, 1 << 30);
} else {
  const wait = setInterval(() => {
    if (!fs.existsSync(dir + "/go1")) return;
    clearInterval(wait);
    print(first, first + rest);
    fs.writeFileSync(dir + "/done1", "");
  }, 5);
}
`;

/** The process is a zombie: it exited, and its parent (the host, whose event loop is held) has not reaped it yet. */
function zombie(pid: number | undefined): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return false; // no procfs: the bound below holds the host instead
  }
}

/** Sleep synchronously: the host's event loop does nothing meanwhile (no reads, no timers). */
const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * A sink filter that, at record "1:0", holds the host's event loop (filters run as records are admitted, inside the
 * host's read of the collector's channel) while the command prints the rest of its lines and exits, and its
 * collector sends them all: until the collector exited too (within some 100 ms when it does not wait to be let go),
 * or for 3 s. A host that writes to the channel of a collector gone meanwhile (credit, acks) must not lose what it
 * has not read of it yet.
 */
function busyHostAtFirstRecord(dir: string, collectorPid: () => number | undefined): (r: { message?: unknown }) => boolean {
  let held = false;
  return (r) => {
    if (held || r.message !== "1:0") return true;
    held = true;
    writeFileSync(join(dir, "go1"), "");
    for (let i = 0; i < 2_000 && !existsSync(join(dir, "done1")); i++) sleepSync(5);
    for (let i = 0; i < 600 && !zombie(collectorPid()); i++) sleepSync(5);
    // A loaded kernel may release a dead process's end of a socket a little after it became a zombie.
    if (zombie(collectorPid())) sleepSync(100);
    return true;
  };
}

describe("CommandSource", () => {
  it.each([
    ["default", {}, { secret: "host-secret", extra: null }],
    ["inheritEnv: false", { inheritEnv: false }, { secret: null, extra: null }],
    ["inheritEnv: false with env", { inheritEnv: false, env: { EXTRA: "1" } }, { secret: null, extra: "1" }],
    ["env", { env: { EXTRA: "1" } }, { secret: "host-secret", extra: "1" }],
  ])("environment (%s): the command sees the host's variables only when it inherits them", async (_name, options, seen) => {
    process.env.CLA_TEST_HOST_SECRET = "host-secret";
    try {
      const mem = new MemorySink({ name: "mem" });
      const print = "console.log(JSON.stringify({ secret: process.env.CLA_TEST_HOST_SECRET ?? null, extra: process.env.EXTRA ?? null }))";
      const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
        .addSource(new CommandSource({ name: "env", command: process.execPath, args: ["-e", print], parser: "json", restartOnExit: "never", ...options }))
        .addSink(mem);
      await agg.start();
      await mem.waitForCount(1, { timeout: 20_000 });
      await agg.stop({ timeoutMs: 10_000 });
      expect(mem.records[0]).toMatchObject(seen);
    } finally {
      delete process.env.CLA_TEST_HOST_SECRET;
    }
  });

  it("ships every stdout line parsed as JSON and every stderr line tagged, with the report counting them", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 20 } })
      .addSource(new CommandSource({ name: "worker", command: process.execPath, args: [fixture, "5000", "0", "hold"], parser: "json" }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(5500, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    const out = mem.records.filter((r) => r.stream === "stdout");
    const err = mem.records.filter((r) => r.stream === "stderr");
    expect(out.map((r) => r.n)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(out[7]).toMatchObject({ message: "line 7", log: { level: "warn" }, service: { name: "worker" } });
    expect(err).toHaveLength(500);
    expect(err[0]).toMatchObject({ message: "progress 10", log: { level: "warn" } });
    expect(report.timedOut).toBe(false);
    expect(report.sources.worker).toMatchObject({ kind: "command", emitted: 5500, admitted: 5500, parseErrors: 500, linesRead: 5500 });
    expect(report.sinks.mem).toMatchObject({ received: 5500, delivered: 5500, pending: 0 });
  });

  it("restarts a command that exits, with backoff, and reports the exit like a result", async () => {
    const mem = new MemorySink({ name: "mem" });
    const exits: SourceExitEvent[] = [];
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new CommandSource({
          name: "flaky",
          command: process.execPath,
          args: [fixture, "20", "3"],
          parser: "json",
          restart: { baseDelayMs: 10, maxDelayMs: 50, maxRestarts: 100 },
        }),
      )
      .addSink(mem);
    agg.on("source:exit", (e) => exits.push(e));
    const restarts: number[] = [];
    agg.on("source:restart", (e) => restarts.push(e.restarts));
    await agg.start();
    await waitFor(() => restarts.length >= 2, { timeout: 20_000, message: () => `2 restarts, saw ${restarts.length}` });
    await mem.waitForCount(60, { timeout: 20_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    // The command's own exit code (the fixture exits 3), not its collector's.
    expect(exits[0]).toMatchObject({ source: "flaky", exitCode: 3, signal: null, expected: false, forceKilled: false });
    expect(exits[0]!.stderrTail).toEqual(["progress 10", "progress 20"]);
    expect(report.sources.flaky!.restarts).toBeGreaterThanOrEqual(2);
    // each incarnation ships all 20 lines (and 2 stderr lines): nothing lost across restarts
    const ns = mem.records.filter((r) => r.stream === "stdout").map((r) => r.n as number);
    expect(ns.slice(0, 40)).toEqual([...Array.from({ length: 20 }, (_, i) => i), ...Array.from({ length: 20 }, (_, i) => i)]);
  });

  it("a crash-looping command trips the breaker and fires source:failed while the others keep delivering", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new CommandSource({
          name: "looper",
          command: process.execPath,
          args: [fixture, "1", "2"],
          restart: { baseDelayMs: 1, maxDelayMs: 5, maxRestarts: 3, windowMs: 60_000 },
        }),
      )
      .addSource(new CommandSource({ name: "steady", command: process.execPath, args: [fixture, "100", "0", "hold"], parser: "json" }))
      .addSink(mem);
    const failed = new Promise<{ source: string; code: string; restarts: number | undefined; message: string }>((resolve) =>
      agg.on("source:failed", (e) => resolve({ source: e.source, code: e.error.code, restarts: e.error.restarts, message: e.error.message })),
    );
    await agg.start();
    const f = await failed;
    expect(f).toEqual({
      source: "looper",
      code: "ERR_COLLECTOR_FAILED",
      restarts: 3,
      message: 'collector "looper" ended 4 times within 60000 ms (the last: exit code 2); giving up',
    });
    expect(agg.metrics().sources.looper!.state).toBe("failed");
    await waitFor(() => mem.records.filter((r) => r.service?.name === "steady" && r.stream === "stdout").length === 100, {
      timeout: 20_000,
      message: "100 records from the steady source",
    });
    const report = await agg.stop({ timeoutMs: 10_000 });
    expect(report.sources.steady!.emitted).toBe(110);
  });

  it("reports the command's exit code, signal and last stderr lines, in source:exit and in the CollectorError fields", async () => {
    const exits = new Map<string, SourceExitEvent>();
    const errors = new Map<string, CollectorError[]>();
    const once = { maxRestarts: 0 }; // the first exit trips the breaker: no restart to wait for
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(
        new CommandSource({
          name: "exit3",
          command: "sh",
          args: ["-c", "echo hello; echo 'first complaint' >&2; printf 'connecting to http://app:s3cret@db:5432\\nlast words' >&2; exit 3"],
          restart: once,
        }),
      )
      .addSource(new CommandSource({ name: "killed", command: "sh", args: ["-c", "echo before; kill -9 $$"], restart: once }))
      .addSink(new MemorySink({ name: "mem" }));
    agg.on("source:exit", (e) => exits.set(e.source, e));
    const collect = (source: string, error: unknown): void => {
      if (error instanceof CollectorError) errors.set(source, [...(errors.get(source) ?? []), error]);
    };
    agg.on("source:error", (e) => collect(e.source, e.error));
    agg.on("source:failed", (e) => collect(e.source, e.error));
    await agg.start();
    await waitFor(() => exits.size === 2 && errors.get("exit3")?.length === 2 && errors.get("killed")?.length === 2, {
      timeout: 20_000,
      message: () => `two exits, and a crash and a breaker error each; saw exits of ${[...exits.keys()]}, errors ${[...errors].map(([k, v]) => `${k}: ${v.map((e) => e.code)}`)}`,
    });
    await agg.stop({ timeoutMs: 10_000 });

    const tail = ["first complaint", "connecting to http://app:[redacted]@db:5432", "last words"];
    expect(exits.get("exit3")).toMatchObject({ exitCode: 3, signal: null, expected: false, stderrTail: tail });
    expect(exits.get("killed")).toMatchObject({ exitCode: null, signal: "SIGKILL", expected: false, stderrTail: [] });
    expect(errors.get("exit3")!.map((e) => [e.code, e.exitCode, e.signal, e.stderrTail])).toEqual([
      ["ERR_COLLECTOR_CRASHED", 3, null, tail],
      ["ERR_COLLECTOR_FAILED", 3, null, tail],
    ]);
    expect(errors.get("killed")!.map((e) => [e.code, e.exitCode, e.signal])).toEqual([
      ["ERR_COLLECTOR_CRASHED", null, "SIGKILL"],
      ["ERR_COLLECTOR_FAILED", null, "SIGKILL"],
    ]);
    expect(JSON.stringify([...exits.values(), ...[...errors.values()].flat().map((e) => e.stderrTail)])).not.toContain("s3cret");
  });

  it("restartOnExit: a command that ends is run again only as asked, and one not run again ends its source quietly", async () => {
    // Each prints its name and exits with the given code; a restart would come within a few ms (baseDelayMs: 1).
    const restart = { baseDelayMs: 1, maxDelayMs: 2, maxRestarts: 5 };
    const command = (name: string, code: number, restartOnExit?: "always" | "on-failure" | "never"): CommandSource =>
      new CommandSource({ name, command: "sh", args: ["-c", `echo ${name}; exit ${code}`], restart, ...(restartOnExit === undefined ? {} : { restartOnExit }) });
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(command("never0", 0, "never"))
      .addSource(command("never3", 3, "never"))
      .addSource(command("onfailure0", 0, "on-failure"))
      .addSource(command("onfailure3", 3, "on-failure"))
      .addSource(command("always0", 0))
      .addSink(mem);
    const { stateAtExit, errors, restarted } = watchSourceEnds(agg);
    await agg.start();
    await waitFor(() => stateAtExit.size === 5 && restarted.has("onfailure3") && restarted.has("always0"), {
      timeout: 20_000,
      message: () => `five exits and two restarts; saw exits ${[...stateAtExit.keys()]}, restarts ${[...restarted]}`,
    });
    const states = agg.metrics().sources;
    await agg.stop({ timeoutMs: 10_000 });

    expect(Object.fromEntries(stateAtExit)).toEqual({
      never0: "stopped",
      never3: "stopped",
      onfailure0: "stopped",
      // (a restart is scheduled right after the event)
      onfailure3: "running",
      always0: "running",
    });
    // Those that ended stay ended, with their one line each.
    for (const name of ["never0", "never3", "onfailure0"]) {
      expect(states[name]!.state, name).toBe("stopped");
      expect(states[name]!.restarts, name).toBe(0);
      expect(mem.records.filter((r) => r.service?.name === name).map((r) => r.message), name).toEqual([name]);
    }
    // An exit with a code other than 0 is still an error; an exit with 0 that ends the source is not.
    expect(errors).toContain("never3");
    expect(errors).not.toContain("never0");
    expect(errors).not.toContain("onfailure0");
    expect(() => new CommandSource({ name: "x", command: "true", restartOnExit: "sometimes" as "never" })).toThrow(/restartOnExit/);
  });

  it("runs no shell unless asked: shell metacharacters reach the program as plain arguments", async () => {
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new CommandSource({ name: "echo", command: "echo", args: ["$HOME; echo injected"], restart: { maxRestarts: 0 } }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(1);
    const report = await agg.stop({ timeoutMs: 5_000 });
    expect(mem.messages()).toEqual(["$HOME; echo injected"]);
    expect(report.sinks.mem!.delivered).toBe(1);
  });
  it("carries records bigger than a channel frame and multi-byte text intact, in order", async () => {
    // 600 KB lines exceed the collector's 256 KiB frame; the small ones around them share frames.
    const big = (c: string): string => c.repeat(600_000);
    const script = [
      "const w = (o) => process.stdout.write(JSON.stringify(o) + '\\n');",
      "w({ n: 0, msg: 'before' });",
      "w({ n: 1, msg: 'a'.repeat(600000) });",
      "w({ n: 2, msg: 'Grüße 😀 日本語' });",
      "w({ n: 3, msg: 'é'.repeat(600000) });",
      "for (let n = 4; n < 3004; n++) w({ n, msg: 'x'.repeat(n % 300) + 'ü' });",
    ].join("\n");
    const mem = new MemorySink({ name: "mem" });
    const agg = new Aggregator({ batch: { maxWaitMs: 10 } })
      .addSource(new CommandSource({ name: "big", command: process.execPath, args: ["-e", script], parser: "json", maxLineBytes: 4 * 1024 * 1024 }))
      .addSink(mem);
    await agg.start();
    await mem.waitForCount(3004, { timeout: 30_000 });
    const report = await agg.stop({ timeoutMs: 10_000 });
    const out = mem.records.filter((r) => r.stream === "stdout");
    expect(out.map((r) => r.n)).toEqual(Array.from({ length: 3004 }, (_, i) => i));
    expect(out[1]!.message).toBe(big("a"));
    expect(out[2]!.message).toBe("Grüße 😀 日本語");
    expect(out[3]!.message).toBe(big("é"));
    expect(out[3004 - 1]!.message).toBe("x".repeat(3003 % 300) + "ü");
    expect(report.sources.big).toMatchObject({ emitted: 3004, parseErrors: 0 });
  });

  describe("a command that prints and exits while the host is behind in reading its collector", () => {
    // 300 lines, then 600 more while the host is held: over one 64 KiB read of the channel, and in the socket's buffer.
    // The credit window covers them all, and admitting the first 300 sends credit back (a quarter of the window).
    const [FIRST, REST] = [300, 600];
    const lines = (k: number, n: number): string[] => Array.from({ length: n }, (_, i) => `${k}:${i}`);
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), "cla-cmd-exit-"));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const setup = (restart: { maxRestarts: number; baseDelayMs?: number }) => {
      const mem = new MemorySink({ name: "mem" });
      const exits: SourceExitEvent[] = [];
      const failed: string[] = [];
      const agg = new Aggregator({ batch: { maxWaitMs: 10 }, credit: { records: 1_024 } });
      agg
        .addSource(new CommandSource({ name: "cmd", command: process.execPath, args: ["-e", TWO_PARTS, String(FIRST), String(REST), dir], restart }))
        .addSink(mem, { filter: busyHostAtFirstRecord(dir, () => agg.metrics().sources.cmd!.pid) });
      agg.on("source:exit", (e) => exits.push(e));
      agg.on("source:failed", (e) => failed.push(e.error.code));
      return { mem, agg, exits, failed };
    };

    it("maxRestarts 0: every line it printed arrives, then its exit is reported and the source fails; the counters agree", async () => {
      const { mem, agg, exits, failed } = setup({ maxRestarts: 0 });
      await agg.start();
      await waitFor(() => failed.length === 1, {
        timeout: 20_000,
        message: () => `source:failed, got ${mem.count} records, exits ${JSON.stringify(exits)}`,
      });
      await mem.waitForCount(FIRST + REST, { timeout: 10_000 });
      const report = await agg.stop({ timeoutMs: 10_000 });
      expect(mem.messages()).toEqual(lines(1, FIRST + REST));
      expect(exits).toEqual([expect.objectContaining({ exitCode: 0, expected: false })]);
      expect(failed).toEqual(["ERR_COLLECTOR_FAILED"]);
      const total = FIRST + REST;
      expect(report.sources.cmd).toMatchObject({ linesRead: total, emitted: total, admitted: total, settled: total, waiting: 0 });
      expect(report.sinks.mem).toMatchObject({ received: total, delivered: total, pending: 0 });
    });

    it("restarted: the next incarnation starts after all of the previous one's lines are in, and its own follow them", async () => {
      const { mem, agg, exits } = setup({ maxRestarts: 5, baseDelayMs: 10 });
      await agg.start();
      await mem.waitForCount(2 * (FIRST + REST), { timeout: 20_000 });
      const report = await agg.stop({ timeoutMs: 10_000 });
      expect(mem.messages()).toEqual([...lines(1, FIRST + REST), ...lines(2, FIRST + REST)]);
      expect(exits[0]).toMatchObject({ exitCode: 0, expected: false, restarts: 0 });
      const total = 2 * (FIRST + REST);
      expect(report.sources.cmd).toMatchObject({ restarts: 1, linesRead: total, emitted: total, admitted: total, settled: total, waiting: 0 });
    });
  });
});
