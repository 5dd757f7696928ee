// The file collector's multiline idle timer counts only while the file is read to its end. On a busy host the read
// that follows a resume for credit, or the next chunk of a long file, can come back after the timeout: the open
// event's next lines are in it, and the timer must not send the event without them.
//
// The collector runs in this process, on a real file and a real channel socket; the test starves the event loop past
// the timeout with a synchronous busy wait (what a loaded host does to the collector), so the timer is overdue when
// the loop next runs timers, which it does before it takes the finished read. No assertion is about time.
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { decodeRecords, encodeJson, FrameDecoder, FrameType } from "../../../src/channel/protocol.js";
import { ChildChannel } from "../../../src/collector/runtime/channel.js";
import { runFile } from "../../../src/collector/runtime/file.js";
import type { CollectorRun } from "../../../src/collector/runtime/run.js";
import type { FileSpec } from "../../../src/sources/specs.js";
import { waitFor } from "../../helpers/wait-for.js";

const TIMEOUT_MS = 20;

/** Keeps the event loop from running for well past the idle timeout. */
function starve(): void {
  const until = Date.now() + 5 * TIMEOUT_MS;
  while (Date.now() < until) {
    // busy, as a collector without CPU
  }
}

let dir: string;
let server: Server | undefined;
let channel: ChildChannel | undefined;
let run: CollectorRun | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cla-ml-idle-"));
});
afterEach(async () => {
  await run?.stop(1_000);
  channel?.close();
  server?.close();
  run = channel = server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A file collector for `file` on a loopback channel with `credit` records; `grant(n)` gives more. */
async function collector(file: string, credit: number) {
  server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const client = connect((server.address() as { port: number }).port, "127.0.0.1");
  await once(client, "connect");
  const [peer] = await accepted;
  const messages: string[] = [];
  const decoder = new FrameDecoder((type, payload) => {
    if (type !== FrameType.RECORDS) return;
    const { starts, ends } = decodeRecords(payload);
    for (let k = 0; k < starts.length; k++) messages.push((JSON.parse(payload.toString("utf8", starts[k], ends[k])) as { message: string }).message);
  });
  peer.on("data", (chunk: Buffer) => decoder.push(chunk));
  const noop = (): void => {};
  channel = new ChildChannel({ init: noop, stop: noop, exit: noop, ack: noop, hostGone: noop }, client);
  channel.begin(0, { records: credit, bytes: 1e12 });
  const spec: FileSpec = {
    kind: "file",
    name: "ml",
    hostName: "h",
    seq: 0,
    credit: { records: credit, bytes: 1e12 },
    killAfterMs: 1_000,
    paths: [file],
    pollIntervalMs: 10,
    checkpointDir: undefined,
    checkpointIntervalMs: 250,
    multiline: { startPattern: "^start", timeoutMs: TIMEOUT_MS },
  };
  const r = await runFile(spec, channel);
  run = r;
  return { run: r, messages, grant: (n: number) => peer.write(encodeJson(FrameType.CREDIT, { records: n, bytes: 0 })) };
}

/** `n` events of three lines ("start i", " a…", " b…"), then a last start line (its event goes out on the timeout). */
function events(n: number, pad = ""): { text: string; expected: string[] } {
  const expected = Array.from({ length: n }, (_, i) => `start ${i}\n a${pad}\n b${pad}`);
  return { text: `${expected.join("\n")}\nstart end\n`, expected: [...expected, "start end"] };
}

describe("file collector: a multiline event is idle only once its file is read to its end", () => {
  it("an event open when the credit ran out waits for its lines however late the read after the resume is", async () => {
    const file = join(dir, "app.log");
    const { text, expected } = events(8);
    writeFileSync(file, text);
    // One record of credit at a time: each event is closed by the next start line, which it then leaves open.
    const c = await collector(file, 1);
    // What main does with credit, then no CPU for a while: the timer is overdue before the rewound read is back.
    channel!.onCredit = () => {
      c.run.resume();
      starve();
    };
    for (let k = 1; k < expected.length; k++) {
      await waitFor(() => c.messages.length >= k, { timeout: 10_000, message: () => `record ${k}, got ${JSON.stringify(c.messages)}` });
      c.grant(1);
    }
    // The last event goes out on the timeout once the file is read to its end: the timer still does its job.
    await waitFor(() => c.messages.length >= expected.length, { timeout: 10_000, message: () => `every event, got ${JSON.stringify(c.messages)}` });
    expect(c.messages).toEqual(expected);
  });

  it("a long file read chunk by chunk, never held back: no event is cut where a chunk ends", async () => {
    const file = join(dir, "app.log");
    // About 600 KiB: ten reads of 64 KiB (the tailer's default); the first ends inside an event's continuation line.
    const { text, expected } = events(3_000, ` ${"x".repeat(100)}`);
    const lineAtFirstReadEnd = text.slice(text.lastIndexOf("\n", 65_536) + 1, text.indexOf("\n", 65_536));
    expect(lineAtFirstReadEnd.startsWith(" "), "the first read ends inside a continuation line").toBe(true);
    writeFileSync(file, text);
    // No CPU on every turn of the loop: after each read, the timer of the event open at its end is overdue.
    let starving = true;
    const starveEachTurn = (): void => {
      starve();
      if (starving) setImmediate(starveEachTurn);
    };
    const c = await collector(file, 1e9);
    setImmediate(starveEachTurn);
    try {
      await waitFor(() => c.messages.length >= expected.length, { timeout: 30_000, message: () => `every event, got ${c.messages.length}` });
    } finally {
      starving = false;
    }
    expect(c.messages.filter((m, i) => m !== expected[i]).slice(0, 3)).toEqual([]);
    expect(c.messages).toHaveLength(expected.length);
  });
});
