// The channel never sends a record over MAX_RECORD_BYTES, whichever way it was built: as text (`push`), written in
// place (`reserve` + `commit`), or by the json fast path. Such a record is dropped, counted, announced once, and
// the records around it go out intact, numbered without a gap.
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { decodeRecords, FrameDecoder, FrameType, MAX_FRAME_BYTES, MAX_RECORD_BYTES } from "../../../src/channel/protocol.js";
import { ChildChannel } from "../../../src/collector/runtime/channel.js";
import { fastJsonRecordBytes, planFastRecord } from "../../../src/collector/parse/fast-json-record.js";
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

/** A channel writing into a loopback socket, and what arrives at the other end. */
async function open(): Promise<{ channel: ChildChannel; records: string[]; seqs: number[]; logs: string[]; largest: () => number }> {
  server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const client = connect(port, "127.0.0.1");
  await once(client, "connect");
  const [peer] = await accepted;
  const records: string[] = [];
  const seqs: number[] = [];
  const logs: string[] = [];
  let largest = 0;
  const decoder = new FrameDecoder((type, payload) => {
    largest = Math.max(largest, payload.length);
    if (type === FrameType.LOG) logs.push((JSON.parse(payload.toString("utf8")) as { message: string }).message);
    if (type !== FrameType.RECORDS) return;
    const { header, starts, ends } = decodeRecords(payload);
    for (let k = 0; k < starts.length; k++) {
      seqs.push(header.seq + k);
      records.push(payload.toString("utf8", starts[k], ends[k]));
    }
  });
  peer.on("data", (chunk: Buffer) => decoder.push(chunk));
  channel = new ChildChannel(handlers, client);
  channel.begin(0, { records: 1e9, bytes: 1e15 });
  return { channel, records, seqs, logs, largest: () => largest };
}

const small = (i: number): string => JSON.stringify({ i, message: `record ${i}` });

describe("ChildChannel record limit", () => {
  it("drops a pushed record over the limit, counts it, warns once, and numbers the rest without a gap", async () => {
    const c = await open();
    const over = JSON.stringify({ message: "é".repeat(MAX_RECORD_BYTES / 2) }); // fewer UTF-16 units than bytes
    const atLimit = JSON.stringify({ message: "a".repeat(MAX_RECORD_BYTES - 14) });
    expect(Buffer.byteLength(atLimit)).toBe(MAX_RECORD_BYTES);
    c.channel.push(small(0));
    c.channel.push(over);
    c.channel.push(small(1));
    c.channel.push(over);
    c.channel.push(atLimit);
    c.channel.push(small(2));
    expect(c.channel.nextSeq).toBe(4);
    c.channel.flush();
    await waitFor(() => c.records.length === 4, { timeout: 10_000, message: () => `4 records, got ${c.records.length}` });
    expect(c.records.map((r) => (r.length > 100 ? `${r.length} bytes` : r))).toEqual([small(0), small(1), `${MAX_RECORD_BYTES} bytes`, small(2)]);
    expect(c.seqs).toEqual([0, 1, 2, 3]);
    expect(c.channel.counters()).toEqual({ oversizedRecords: 2 });
    expect(c.logs).toEqual([`dropped a record of ${Buffer.byteLength(over)} bytes or more: over the ${MAX_RECORD_BYTES}-byte record limit (counted as oversizedRecords)`]);
    expect(c.largest()).toBeLessThan(MAX_FRAME_BYTES);
  });

  it("drops a record written in place (reserve + commit) over the limit; the next one takes its room", async () => {
    const c = await open();
    c.channel.push(small(0));
    const size = MAX_RECORD_BYTES + 10;
    const buf = c.channel.reserve(size);
    const start = c.channel.recordStart;
    buf.write(`{"m":"${"x".repeat(size - 8)}"}`, start);
    c.channel.commit(start + size);
    c.channel.push(small(1));
    c.channel.flush();
    await waitFor(() => c.records.length === 2, { timeout: 10_000, message: () => `2 records, got ${c.records.length}` });
    expect(c.records).toEqual([small(0), small(1)]);
    expect(c.seqs).toEqual([0, 1]);
    expect(c.channel.counters()).toEqual({ oversizedRecords: 1 });
  });

  it("the json fast path leaves a line whose record could pass the limit to the general path, which measures it", () => {
    const plan = planFastRecord({ source: "s" })!;
    const writes: number[] = [];
    const writer = {
      recordStart: 0,
      reserve: (max: number) => {
        writes.push(max);
        return Buffer.allocUnsafe(max);
      },
      commit: noop,
    };
    const line = (n: number): Buffer => Buffer.from(`{"msg":"${"a".repeat(n - 10)}"}`);
    // The fast path's bound is 5 bytes of record per byte of line (plus its constants).
    const bound = Math.floor((MAX_RECORD_BYTES - plan.constBytes) / 5);
    expect(fastJsonRecordBytes(line(bound), 0, bound, plan, "2024-01-01T00:00:00.000Z", undefined, writer)).toBe(true);
    expect(writes).toHaveLength(1);
    expect(fastJsonRecordBytes(line(bound + 1), 0, bound + 1, plan, "2024-01-01T00:00:00.000Z", undefined, writer)).toBe(false);
    expect(writes).toHaveLength(1); // nothing reserved for it
  });
});
