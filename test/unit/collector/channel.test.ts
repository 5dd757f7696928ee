// ChildChannel carves its RECORDS frames out of reused slabs. A slab may be written into again only once the OS
// took every frame in it: here frames pile up in a real socket whose reader is paused, and every record must still
// arrive intact and in seq order, across rounds that reuse the slabs of the round before, with records larger than
// a slab among them.
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { decodeRecords, FrameDecoder, FrameType } from "../../../src/channel/protocol.js";
import { ChildChannel } from "../../../src/collector/runtime/channel.js";
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

/** A loopback TCP pair: the channel writes to `client`; `peer` is the host's end, paused. */
async function socketPair(): Promise<{ client: Socket; peer: Socket }> {
  server = createServer({ pauseOnConnect: true });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const client = connect(port, "127.0.0.1");
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
});
