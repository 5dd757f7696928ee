// A script collector's committed cursors: written only once every record emitted before them is settled, and kept to
// a bounded list while one record stays unsettled.
import { describe, expect, it } from "vitest";
import { PendingCursors } from "../../../src/collector/runtime/pending-cursors.js";

describe("PendingCursors", () => {
  it("holds a cursor until every record before it is settled, then gives the newest that is safe", () => {
    const c = new PendingCursors();
    expect(c.add(3, '"page 1"')).toBeUndefined(); // records 0..2 before it
    expect(c.add(5, '"page 2"')).toBeUndefined();
    expect(c.settle(2)).toBeUndefined(); // records 0 and 1 settled, 2 not yet
    expect(c.settle(3)).toBe('"page 1"');
    expect(c.settle(9)).toBe('"page 2"');
    expect(c.length).toBe(0);
    // Committed with nothing emitted since what is settled: written at once.
    expect(c.add(9, '"page 3"')).toBe('"page 3"');
  });

  it("a commit at the same place replaces the one before", () => {
    const c = new PendingCursors();
    c.add(4, "a");
    c.add(4, "b");
    expect(c.length).toBe(1);
    expect(c.settle(4)).toBe("b");
  });

  it("past its cap, the newest cursor moves on instead of a new one: bounded, and never written early", () => {
    const c = new PendingCursors(3);
    // Record 0 is never settled; the script keeps emitting one record and committing after each.
    for (let seq = 1; seq <= 1000; seq++) expect(c.add(seq, `after ${seq}`)).toBeUndefined();
    expect(c.length).toBe(3);
    expect(c.settle(0)).toBeUndefined();
    expect(c.settle(1)).toBe("after 1");
    expect(c.settle(2)).toBe("after 2");
    // The third was replaced by the newest: it waits for record 999 too, and then it is the newest cursor.
    expect(c.settle(999)).toBeUndefined();
    expect(c.settle(1000)).toBe("after 1000");
  });
});
