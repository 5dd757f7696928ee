// The GELF UDP listener's clocks and kernel counters: chunk expiry on a monotonic clock (a wall clock that jumps
// must not expire or keep chunks), and the kernel's per-socket drop count read from /proc/net/udp(6).
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { afterEach, describe, expect, it, vi } from "vitest";
import { newCounters } from "../../../src/collector/network/counters.js";
import { Intake } from "../../../src/collector/network/intake.js";
import { kernelDrops, listenUdp, procNetKey } from "../../../src/collector/network/udp-listener.js";
import { waitFor } from "../../helpers/wait-for.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("UDP listener", () => {
  it("keeps a chunked message's time on a monotonic clock: a wall clock stepped an hour on does not expire it", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const pushed: string[] = [];
    const counters = newCounters();
    const intake = new Intake(
      { source: "net", fields: undefined, parser: "json", maxGelfBytes: 1_000_000 },
      { push: (json) => (pushed.push(json), true), hasCredit: true, hasCreditOver: () => true },
      counters,
      () => {},
    );
    const limits = { timeoutMs: 5_000, maxPendingMessages: 10, maxPendingBytes: 1_000_000, maxMessageBytes: 1_000_000 };
    const listener = await listenUdp({ protocol: "gelf+udp", host: "127.0.0.1", port: 0 }, intake, limits, () => {});
    const client = createSocket("udp4");
    try {
      const payload = Buffer.from(JSON.stringify({ version: "1.1", host: "h", short_message: "two chunks" }));
      const id = randomBytes(8);
      const half = Math.ceil(payload.length / 2);
      const chunk = (seq: number) => Buffer.concat([Buffer.from([0x1e, 0x0f]), id, Buffer.from([seq, 2]), payload.subarray(seq * half, (seq + 1) * half)]);
      const send = (b: Buffer) => new Promise<void>((resolve, reject) => client.send(b, listener.bound.port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));
      await send(chunk(0));
      await waitFor(() => counters.datagrams === 1, { timeout: 10_000, message: "the first chunk to arrive" });
      vi.setSystemTime(Date.now() + 3_600_000); // NTP step, VM resumed: the wall clock jumps, elapsed time does not
      await send(chunk(1));
      await waitFor(() => counters.datagrams === 2, { timeout: 10_000, message: "the second chunk to arrive" });
      expect(counters.gelfChunksExpired).toBe(0);
      expect(pushed.map((p) => (JSON.parse(p) as { message: string }).message)).toEqual(["two chunks"]);
    } finally {
      client.close();
      await listener.close();
    }
  });

  it("finds its socket in /proc/net/udp and udp6 by local address and port, in the kernel's byte order", () => {
    expect(procNetKey("127.0.0.1", 12201, true)).toEqual({ file: "/proc/net/udp", local: "0100007F:2FA9" });
    expect(procNetKey("127.0.0.1", 12201, false)).toEqual({ file: "/proc/net/udp", local: "7F000001:2FA9" });
    expect(procNetKey("0.0.0.0", 80, true)).toEqual({ file: "/proc/net/udp", local: "00000000:0050" });
    expect(procNetKey("::1", 1, true)).toEqual({ file: "/proc/net/udp6", local: "00000000000000000000000001000000:0001" });
    expect(procNetKey("::ffff:10.0.0.1", 2, false)).toEqual({ file: "/proc/net/udp6", local: "00000000000000000000FFFF0A000001:0002" });
    expect(procNetKey("localhost", 1)).toBeUndefined();
    const table = [
      "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            ",
      " 1187: 0100007F:2FA9 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 123456 2 0000000000000000 4211   ",
      " 1188: 0100007F:2FAA 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 123457 2 0000000000000000 7      ",
    ].join("\n");
    expect(kernelDrops(table, "0100007F:2FA9")).toBe(4211);
    expect(kernelDrops(table, "0100007F:2FAA")).toBe(7);
    expect(kernelDrops(table, "0100007F:0001")).toBeUndefined();
  });
});
