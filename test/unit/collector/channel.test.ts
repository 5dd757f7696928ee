// ChildChannel carves its RECORDS frames out of reused slabs. A slab may be written into again only once the OS
// took every frame in it: here frames pile up in a real socket whose reader is paused, and every record must still
// arrive intact and in seq order, across rounds that reuse the slabs of the round before, with records larger than
// a slab among them.
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { decodeRecords, FrameDecoder, FrameType } from "../../../src/channel/protocol.js";
import { ChildChannel, MAX_BACKLOG_BYTES } from "../../../src/collector/runtime/channel.js";
import { waitFor } from "../../helpers/wait-for.js";

const noop = (): void => {};
const handlers = { init: noop, stop: noop, exit: noop, ack: noop, hostGone: noop };

let server: Server | undefined;
let channel: ChildChannel | undefined;
afterEach(() => {
  channel?.close();
  server?.close();
  channel = server = undefined;
});

/**
 * A connected pair: the channel writes to `client`; `peer` is the host's end, paused. Loopback TCP, or with `unix` a
 * Unix socket, as a collector's channel is (its kernel buffers hold a few hundred KB, loopback TCP's several MB).
 */
async function socketPair(unix = false): Promise<{ client: Socket; peer: Socket }> {
  server = createServer({ pauseOnConnect: true });
  const path = join(tmpdir(), `cla-channel-${process.pid}-${Date.now()}.sock`);
  if (unix) server.listen(path);
  else server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const client = unix ? connect(path) : connect((server.address() as { port: number }).port, "127.0.0.1");
  await once(client, "connect");
  const [peer] = await accepted;
  return { client, peer };
}

/** Record `i`: its own length and letter, so a byte from another record shows. Every 5,000th is over 1 MiB
 * (a slab of its own); between two of those, ordinary frames fill several slabs. */
function record(i: number): string {
  const size = i % 5000 === 2500 ? 1_300_000 + i : (i * 37) % 3000;
  return JSON.stringify({ i, pad: String.fromCharCode(97 + (i % 26)).repeat(size) });
}

describe("ChildChannel frames", () => {
  it("delivers every record intact while frames wait in the socket, round after round", async () => {
    const { client, peer } = await socketPair();
    const got: string[] = [];
    const seqs: number[] = [];
    const decoder = new FrameDecoder((type, payload) => {
      expect(type).toBe(FrameType.RECORDS);
      const { header, starts, ends } = decodeRecords(payload);
      const count = starts.length;
      seqs.push(header.seq, count);
      for (let k = 0; k < count; k++) got.push(payload.toString("utf8", starts[k], ends[k]));
    });
    peer.on("data", (chunk: Buffer) => decoder.push(chunk));
    peer.pause();

    channel = new ChildChannel(handlers, client);
    channel.begin(0, { records: 1e9, bytes: 1e15 });
    let sent = 0;
    const queuedAtRoundEnd: number[] = [];
    for (let round = 0; round < 4; round++) {
      // About 25 MB a round: more than loopback's socket buffers hold, so most frames wait in the writer's queue.
      for (const end = sent + 12_000; sent < end; sent++) channel.push(record(sent));
      channel.flush();
      queuedAtRoundEnd.push(client.writableLength);
      peer.resume();
      await waitFor(() => got.length === sent, { timeout: 30_000, message: () => `round ${round}: ${got.length} of ${sent} records arrived` });
      peer.pause();
    }
    // The premise: in every round, frames were still queued when the next records were written.
    for (const queued of queuedAtRoundEnd) expect(queued).toBeGreaterThan(4 * 1024 * 1024);
    expect(got.length).toBe(sent);
    for (let i = 0; i < sent; i++) {
      if (got[i] !== record(i)) expect.fail(`record ${i} differs: ${got[i]!.slice(0, 60)}… (${got[i]!.length} chars)`);
    }
    // Frames number their records consecutively from 0.
    let next = 0;
    for (let k = 0; k < seqs.length; k += 2) {
      expect(seqs[k]).toBe(next);
      next += seqs[k + 1]!;
    }
    expect(next).toBe(sent);
  });

  it("stops asking for input while the socket holds over MAX_BACKLOG_BYTES, and goes on once it is written", async () => {
    const { client, peer } = await socketPair(true);
    let got = 0;
    const decoder = new FrameDecoder((_type, payload) => (got += decodeRecords(payload).starts.length));
    peer.on("data", (chunk: Buffer) => decoder.push(chunk));
    channel = new ChildChannel(handlers, client);
    channel.begin(0, { records: 1e9, bytes: 1e15 });
    let resumed = 0;
    let roomFrames = 0;
    channel.onCredit = () => resumed++;
    channel.onCreditFrame = () => roomFrames++;
    const line = JSON.stringify({ msg: "x".repeat(300) });
    // Far more than the kernel's socket buffers hold, far less than the credit: only the backlog can stop this.
    let sent = 0;
    let more = true;
    while (more && sent < 100_000) {
      more = channel.push(line);
      sent++;
    }
    expect(more, "push() never said stop with the reader paused and credit left").toBe(false);
    expect(client.writableLength).toBeGreaterThan(MAX_BACKLOG_BYTES);
    // It stopped within a frame (at most 256 KiB of records) of the mark.
    expect(client.writableLength).toBeLessThan(MAX_BACKLOG_BYTES + 300 * 1024);
    expect(channel.hasCreditOver(1e8, 1e14)).toBe(false);
    expect(resumed).toBe(0);

    peer.resume();
    await waitFor(() => resumed === 1, { timeout: 10_000, message: () => `onCredit was called ${resumed} times once the reader resumed` });
    expect(roomFrames).toBe(1);
    expect(channel.hasCredit).toBe(true);
    expect(client.writableLength).toBeLessThanOrEqual(MAX_BACKLOG_BYTES / 2);
    channel.flush();
    await waitFor(() => got === sent, { timeout: 10_000, message: () => `${got} of ${sent} records arrived` });
  });
});
