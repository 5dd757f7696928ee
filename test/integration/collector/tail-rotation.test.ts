// Acceptance: a writer appends 200k numbered lines while rotating twice by rename and once by copytruncate; the
// tailer must deliver every number exactly once, except the copytruncate window, which is produced on purpose and
// counted exactly.
//
// The writer behaves like a logger: it holds an O_APPEND descriptor. On rename rotation it keeps writing 500 lines
// to the renamed file (as a logger does until it reopens), then reopens app.log. The glob is `app.log*`, so the
// rotated files are matched again under their new names: identity tracking must not read them twice.
//
// Copytruncate is made deterministic:
//   1. wait until the tailer has delivered everything written so far, then pause() it;
//   2. write B = 300 lines            → in app.log and in the copy, not read yet;
//   3. copy app.log → app.log.ct;
//   4. write C = 100 lines            → only in app.log, after the copy: the copytruncate window;
//   5. truncate app.log to 0, resume() the tailer, keep writing (O_APPEND writes land at 0).
// Expected: B arrives exactly once (read from the copy, recognized by its fingerprint, from where the original
// stopped), C is lost — exactly those 100 numbers and no other — because they existed only in the bytes the
// truncate destroyed before anyone read them. No tailer can recover them; a real deployment shrinks the window
// by reading faster than the copy takes, never to zero. Everything else: exactly once.
import { copyFile, mkdtemp, open, rename, rm, stat, truncate, type FileHandle } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileTailer, type TailLine } from "../../../src/collector/tail/tailer.js";
import { waitFor } from "../../helpers/wait-for.js";

const TOTAL = 200_000;
const PER_WRITE = 1000;
const AFTER_RENAME = 500;
const B = 300;
const C = 100;

let dir: string;
let tailer: FileTailer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "cla-rotate-"));
});

afterEach(async () => {
  await tailer?.stop();
  tailer = undefined;
  await rm(dir, { recursive: true, force: true });
});

class Writer {
  next = 1;
  #fd!: FileHandle;
  constructor(readonly file: string) {}
  async open(): Promise<void> {
    this.#fd = await open(this.file, "a");
  }
  async write(count: number): Promise<number[]> {
    const numbers: number[] = [];
    let s = "";
    for (let i = 0; i < count; i++, this.next++) {
      numbers.push(this.next);
      s += `n ${this.next} ${"x".repeat(this.next % 17)}\n`;
    }
    await this.#fd.write(s);
    return numbers;
  }
  async reopen(): Promise<void> {
    await this.#fd.close();
    await this.open();
  }
  async close(): Promise<void> {
    await this.#fd.close();
  }
}

describe("FileTailer: 200k lines across two rename rotations and one copytruncate", () => {
  it.each([
    { watch: true, label: "with fs.watch hints" },
    { watch: false, label: "polling only" },
  ])("delivers every number exactly once except the documented copytruncate window ($label)", async ({ watch }) => {
    const file = path.join(dir, "app.log");
    const counts = new Uint8Array(TOTAL + 1);
    let received = 0;
    let malformed = 0;
    const handler = (lines: TailLine[]): void => {
      for (const line of lines) {
        const n = Number(line.text.slice(2, line.text.indexOf(" ", 2)));
        if (!Number.isInteger(n) || n < 1 || n > TOTAL) malformed++;
        else counts[n]!++;
        received++;
      }
    };
    const writer = new Writer(file);
    await writer.open();
    tailer = new FileTailer(
      { paths: [path.join(dir, "app.log*")], pollIntervalMs: 10, globIntervalMs: 50, rotateWaitMs: 200, watch },
      handler,
    );
    const t = tailer;
    await t.start();

    let window: number[] = [];
    while (writer.next <= TOTAL) {
      const at = writer.next;
      if (at === 50_001) {
        await rename(file, `${file}.1`);
        await writer.write(AFTER_RENAME); // the logger has not reopened yet
        await writer.reopen();
      } else if (at === 100_501) {
        // A rotation is a file the tailer follows moving away from its name. Polling only, the tailer rescans every
        // globIntervalMs and the writer can write 50k lines in less: let it find this app.log under its own name
        // first, or it first sees it as app.log.1, a file that never rotated (rotations would count 1, data intact).
        const inode = String((await stat(file, { bigint: true })).ino);
        await waitFor(() => t.files().some((f) => f.inode === inode && f.path === file), {
          timeout: 20_000,
          message: () => `the tailer to find app.log (inode ${inode}), files ${JSON.stringify(t.files())}`,
        });
        await rename(`${file}.1`, `${file}.2`);
        await rename(file, `${file}.1`);
        await writer.write(AFTER_RENAME);
        await writer.reopen();
      } else if (at === 150_001) {
        const written = writer.next - 1;
        await waitFor(() => received >= written, { timeout: 20_000, message: () => `caught up to ${written}, got ${received}` });
        t.pause();
        await writer.write(B);
        await copyFile(file, `${file}.ct`);
        window = await writer.write(C);
        await truncate(file, 0);
        t.resume();
      }
      await writer.write(Math.min(PER_WRITE, TOTAL - writer.next + 1));
    }
    await writer.close();

    const expected = TOTAL - C;
    await waitFor(() => received >= expected, {
      timeout: 30_000,
      message: () => `${expected} lines, got ${received} (stats ${JSON.stringify(t.stats())})`,
    });
    // Quiescence: a duplicate would arrive on a later scan/read; give it several full rescans to show up.
    const scans = t.stats().scans;
    await waitFor(() => t.stats().scans >= scans + 4, { timeout: 10_000, message: "4 more rescans" });

    const missing: number[] = [];
    const duplicated: number[] = [];
    for (let n = 1; n <= TOTAL; n++) {
      if (counts[n] === 0) missing.push(n);
      else if (counts[n]! > 1) duplicated.push(n);
    }
    expect(malformed).toBe(0);
    expect(duplicated).toEqual([]);
    expect(window).toHaveLength(C);
    expect(missing).toEqual(window); // the copytruncate window, exactly, and nothing else
    expect(received).toBe(expected);
    expect(t.stats()).toMatchObject({ rotations: 2, truncations: 1, copytruncateCopies: 1, linesTruncated: 0 });
  });
});
