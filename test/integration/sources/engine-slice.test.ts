// The engine gives the host's event loop back once its slice of a turn is spent (src/pipeline/slice.ts): the channel
// stops reading until the turn's check phase, and a sliced pump admits one producer's turn and leaves the rest to the
// next turn. With the slice spent at every check, every path that yields is taken at every chance: nothing may be
// lost, reordered or left waiting on the way.
import { afterEach, expect, it, vi } from "vitest";
import { engineSlice } from "../../../src/pipeline/slice.js";
import { Aggregator, CommandSource, MemorySink } from "../../../src/index.js";

afterEach(() => vi.restoreAllMocks());

/** Prints N JSON lines {"n":0}… in writes of 1,000 lines. */
const PRINTER = `
const n = Number(process.argv[1]);
for (let i = 0; i < n; i += 1000) {
  let s = "";
  for (let k = i; k < Math.min(n, i + 1000); k++) s += '{"n":' + k + '}\\n';
  process.stdout.write(s);
}
`;

it("delivers every record of two collectors, each in order, when the engine yields at every check", async () => {
  const spent = vi.spyOn(engineSlice, "spent").mockReturnValue(true);
  const N = 30_000;
  const mem = new MemorySink({ name: "mem" });
  // Small credit and queue bounds: the collectors stop at their windows and go on as the router admits, turn by turn.
  const agg = new Aggregator({ credit: { records: 1_000 }, queue: { maxRecords: 2_000, whenFull: "block" }, batch: { maxRecords: 500 } }).addSink(mem);
  for (const name of ["a", "b"]) {
    agg.addSource(new CommandSource({ name, command: process.execPath, args: ["-e", PRINTER, String(N)], parser: "json", }));
  }
  await agg.start();
  await mem.waitForCount(2 * N, { timeout: 60_000 });
  const report = await agg.stop();

  expect(report.totals).toMatchObject({ delivered: 2 * N, dropped: 0, pending: 0 });
  for (const name of ["a", "b"]) {
    expect(report.sources[name]).toMatchObject({ emitted: N, settled: N, waiting: 0 });
    const ns = mem.records.filter((r) => r.service?.name === name).map((r) => r["n"]);
    expect(ns, `records of source ${name}`).toEqual(Array.from({ length: N }, (_, i) => i));
  }
  // The channels and the router asked, chunk by chunk and turn by turn.
  expect(spent.mock.calls.length).toBeGreaterThan(100);
});
