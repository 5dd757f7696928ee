// Entries as the host holds them: records of RECORDS frames (joined by "\n" after a header) referenced in place,
// with records written as text mixed in. Sinks that copy runs of a frame at once are tested against these.
import { Entry } from "../../src/pipeline/entry.js";

const POOL = ['{"m":"a"}', '{"m":"Grüße 😀","n":12}', '{"m":"' + "x".repeat(300) + '"}', "{}", '{"m":"\\n,"}'];

export interface FramedEntriesOptions {
  frames: number;
  perFrame: number;
  /** After a frame record, a text entry of the same record follows with probability 1 / textOneIn. */
  textOneIn: number;
  /** A frame record is left out with probability 1 / dropOneIn (a gap in the run). @default never */
  dropOneIn?: number;
}

/** Seeded by `rand(n)` (an integer in [0, n)): runs of every length, broken by frame edges, gaps and text entries. */
export function framedEntries(rand: (n: number) => number, o: FramedEntriesOptions): { entries: Entry[]; texts: string[] } {
  const entries: Entry[] = [];
  const texts: string[] = [];
  for (let f = 0; f < o.frames; f++) {
    const recs = Array.from({ length: o.perFrame }, () => POOL[rand(POOL.length)]!);
    const frame = Buffer.from("HDR" + recs.join("\n"));
    let at = 3;
    for (const r of recs) {
      const bytes = Buffer.byteLength(r);
      if (o.dropOneIn === undefined || rand(o.dropOneIn) !== 0) {
        entries.push(new Entry(frame, bytes, undefined, entries.length, undefined, at));
        texts.push(r);
      }
      at += bytes + 1;
      if (rand(o.textOneIn) === 0) {
        entries.push(new Entry(r, bytes, undefined, entries.length));
        texts.push(r);
      }
    }
  }
  return { entries, texts };
}
