// Slicing input between credit checks: at most SLICE_MESSAGES delimiters per slice (so a listener out of credit stops
// within a few dozen records), whole lines where possible, NUL too for GELF TCP, bounded bytes for long lines.
import { describe, expect, it } from "vitest";
import { SLICE_BYTES, SLICE_MESSAGES, feedSlices, sliceEnd, slicesFor } from "../../../src/collector/network/slices.js";

describe("sliceEnd", () => {
  it("ends after SLICE_MESSAGES delimiters", () => {
    const buf = Buffer.from("{}\n".repeat(SLICE_MESSAGES * 3));
    expect(sliceEnd(buf, 0, false)).toBe(3 * SLICE_MESSAGES);
    expect(sliceEnd(buf, 3 * SLICE_MESSAGES, false)).toBe(6 * SLICE_MESSAGES);
  });

  it("takes the rest when fewer delimiters are left, and ends at the last delimiter before SLICE_BYTES", () => {
    expect(sliceEnd(Buffer.from("a\nb\nc"), 0, false)).toBe(5);
    const line = "x".repeat(3000) + "\n"; // SLICE_MESSAGES of them are over SLICE_BYTES
    const buf = Buffer.from(line.repeat(Math.ceil((SLICE_BYTES * 2) / line.length)));
    const end = sliceEnd(buf, 0, false);
    expect(end % line.length).toBe(0); // whole lines only
    expect(end).toBeLessThanOrEqual(SLICE_BYTES);
    expect(end).toBeGreaterThan(SLICE_BYTES - line.length);
  });

  it("cuts a line longer than SLICE_BYTES at SLICE_BYTES", () => {
    const buf = Buffer.alloc(SLICE_BYTES * 2 + 5, 0x61);
    expect(sliceEnd(buf, 0, false)).toBe(SLICE_BYTES);
    expect(sliceEnd(buf, SLICE_BYTES * 2, false)).toBe(SLICE_BYTES * 2 + 5);
  });

  it("counts NUL as a delimiter only for GELF", () => {
    const buf = Buffer.from("f\0".repeat(SLICE_MESSAGES) + "g\n".repeat(SLICE_MESSAGES));
    expect(sliceEnd(buf, 0, true)).toBe(2 * SLICE_MESSAGES);
    expect(sliceEnd(buf, 0, false)).toBe(buf.length);
    const mixed = Buffer.from("a\0b\n".repeat(SLICE_MESSAGES));
    expect(sliceEnd(mixed, 0, true)).toBe(2 * SLICE_MESSAGES);
  });
});

describe("feedSlices", () => {
  it("stops where go() says no, and feeds everything in order otherwise", () => {
    const buf = Buffer.from(Array.from({ length: 1000 }, (_, i) => `${i}\n`).join(""));
    const seen: string[] = [];
    let slices = 0;
    const at = feedSlices(buf, 0, false, (s) => {
      slices++;
      seen.push(s.toString());
    }, () => slices < 2);
    expect(slices).toBe(2);
    expect(seen.join("").split("\n").filter(Boolean)).toHaveLength(2 * SLICE_MESSAGES);
    const rest = feedSlices(buf, at, false, (s) => seen.push(s.toString()), () => true);
    expect(rest).toBe(buf.length);
    expect(seen.join("")).toBe(buf.toString());
  });

  it("sizes slices to the credit window: a sixteenth of its records, a thirty-second of its bytes, within 1–64 and 1 KiB–64 KiB", () => {
    expect(slicesFor({ records: 8_192, bytes: 8 * 1024 * 1024 })).toEqual({ messages: 64, bytes: 64 * 1024 });
    expect(slicesFor({ records: 64, bytes: 64 * 1024 })).toEqual({ messages: 4, bytes: 2 * 1024 });
    expect(slicesFor({ records: 1, bytes: 1024 })).toEqual({ messages: 1, bytes: 1024 });
    // A slice ends after its last message, or at its byte limit when a message runs longer.
    const buf = Buffer.from("a\nb\nc\nd\n");
    expect(sliceEnd(buf, 0, false, { messages: 2, bytes: 1024 })).toBe(4);
    expect(sliceEnd(Buffer.from("x".repeat(3000)), 0, false, { messages: 2, bytes: 1024 })).toBe(1024);
  });
});
