// GELF TCP framing: NUL (or newline) ends a frame, frames cross reads, oversized frames are dropped with bounded memory.
import { describe, expect, it } from "vitest";
import { FrameSplitter } from "../../../src/collector/network/frame-splitter.js";

function run(max: number, chunks: string[], flush = true): { frames: string[]; oversize: number } {
  const frames: string[] = [];
  let oversize = 0;
  const s = new FrameSplitter(max, (f) => frames.push(f.toString()), () => oversize++);
  for (const c of chunks) s.push(Buffer.from(c));
  if (flush) s.flush();
  return { frames, oversize };
}

describe("FrameSplitter", () => {
  it("splits on NUL and newline, skipping empty frames", () => {
    expect(run(100, ["a\0b\0\nc\n\0\0d\0"]).frames).toEqual(["a", "b", "c", "d"]);
  });

  it("joins frames that cross reads, byte by byte too", () => {
    expect(run(100, ["ab", "c\0d", "e\0"]).frames).toEqual(["abc", "de"]);
    expect(run(100, [..."hello\0world\0"]).frames).toEqual(["hello", "world"]);
  });

  it("emits an undelimited tail only at flush (connection end)", () => {
    expect(run(100, ["a\0tail"], false).frames).toEqual(["a"]);
    expect(run(100, ["a\0tail"]).frames).toEqual(["a", "tail"]);
  });

  it("drops a frame over the limit once, whether it arrives whole or in pieces, and goes on", () => {
    expect(run(4, ["12345\0ok\0"])).toEqual({ frames: ["ok"], oversize: 1 });
    expect(run(4, ["12", "34", "5", "67\0ok\0"])).toEqual({ frames: ["ok"], oversize: 1 });
    expect(run(4, ["1234\0"])).toEqual({ frames: ["1234"], oversize: 0 });
  });

  it("reports an oversized frame as soon as it goes over the limit, before (and whether or not) its delimiter comes", () => {
    const frames: string[] = [];
    let oversize = 0;
    const s = new FrameSplitter(4, (f) => frames.push(f.toString()), () => oversize++);
    s.push(Buffer.from("123"));
    expect(oversize).toBe(0);
    expect(s.pendingBytes).toBe(3);
    s.push(Buffer.from("45678"));
    expect(oversize).toBe(1);
    expect(s.pendingBytes).toBe(0); // nothing of it is held while it is skipped
    s.push(Buffer.from("9".repeat(1000)));
    s.push(Buffer.from("\0ok\0"));
    expect({ frames, oversize }).toEqual({ frames: ["ok"], oversize: 1 });
    s.push(Buffer.from("12345"));
    s.flush(); // the connection ends inside a second oversized frame: still one report for it
    expect(oversize).toBe(2);
  });
});
