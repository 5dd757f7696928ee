// GELF over UDP follows its host name to a new address. The socket is connected to one address, and UDP reports
// nothing when nobody listens there any more, so the sink looks the name up again every minute. DNS cannot be made
// to change here, so only the lookup is replaced; the datagrams go to two real receivers, on 127.0.0.1 and
// 127.0.0.2 (both loopback on Linux) at the same port.
import { afterEach, describe, expect, it, vi } from "vitest";
import { GelfSink } from "../../../src/sinks/gelf.js";
import { createBatch } from "../../../src/testing/create-batch.js";
import { GelfUdpReceiver } from "../../helpers/receivers/gelf-udp.js";
import { waitFor } from "../../helpers/wait-for.js";

const dns = vi.hoisted(() => ({ address: "127.0.0.1", lookups: 0, fail: false }));
vi.mock("node:dns/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:dns/promises")>();
  return {
    ...real,
    lookup: (hostname: string) => {
      if (hostname !== "graylog.test") return real.lookup(hostname);
      dns.lookups++;
      if (dns.fail) return Promise.reject(Object.assign(new Error("getaddrinfo EAI_AGAIN graylog.test"), { code: "EAI_AGAIN" }));
      return Promise.resolve({ address: dns.address, family: 4 });
    },
  };
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const send = (sink: GelfSink, message: string): Promise<unknown> =>
  Promise.resolve(sink.send(createBatch([{ "@timestamp": "2024-05-01T12:00:00.000Z", message }]), { signal: new AbortController().signal }));

describe("GelfSink over UDP to a host name whose address changes", () => {
  it("sends to the new address after the next lookup (every minute), and only then", async () => {
    const first = await GelfUdpReceiver.start();
    const second = await GelfUdpReceiver.start({ address: "127.0.0.2", port: first.port });
    cleanups.push(() => first.close(), () => second.close());
    // Only Date is faked: the sink's clock for the lookup interval. Sends and the sender thread run for real.
    vi.useFakeTimers({ toFake: ["Date"] });
    const sink = new GelfSink({ name: "gelf", url: `udp://graylog.test:${first.port}` });
    cleanups.push(() => sink.close());
    await sink.open({ signal: new AbortController().signal });
    await send(sink, "before");
    await waitFor(() => first.messages.length === 1, { timeout: 10_000, message: () => `first receiver has ${first.messages.length}/1` });

    // The name moves. Within the minute the sink keeps its connected address and does not look it up again.
    dns.address = "127.0.0.2";
    const lookups = dns.lookups;
    vi.advanceTimersByTime(30_000);
    await send(sink, "within the minute");
    await waitFor(() => first.messages.length === 2, { timeout: 10_000, message: () => `first receiver has ${first.messages.length}/2` });
    expect(dns.lookups).toBe(lookups);

    // Past the minute: looked up again, and the next datagrams go to the new address.
    vi.advanceTimersByTime(31_000);
    await send(sink, "after the move");
    await waitFor(() => second.messages.length === 1, { timeout: 10_000, message: () => `second receiver has ${second.messages.length}/1` });
    expect(second.messages.map((m) => m.message.short_message)).toEqual(["after the move"]);
    expect(first.messages.map((m) => m.message.short_message)).toEqual(["before", "within the minute"]);
    expect(sink.metrics().udp_readdressed).toBe(1);
  });

  it("keeps its address when the lookup fails or returns the same one", async () => {
    const rx = await GelfUdpReceiver.start();
    cleanups.push(() => rx.close());
    vi.useFakeTimers({ toFake: ["Date"] });
    dns.address = "127.0.0.1";
    const sink = new GelfSink({ name: "gelf", url: `udp://graylog.test:${rx.port}` });
    cleanups.push(() => sink.close());
    await sink.open({ signal: new AbortController().signal });
    const lookups = dns.lookups;
    for (let i = 0; i < 3; i++) {
      dns.fail = i === 1; // the second lookup fails (a DNS hiccup)
      vi.advanceTimersByTime(61_000);
      await send(sink, `m${i}`);
    }
    dns.fail = false;
    await waitFor(() => rx.messages.length === 3, { timeout: 10_000, message: () => `receiver has ${rx.messages.length}/3` });
    expect(dns.lookups - lookups).toBe(3);
    expect(sink.metrics().udp_readdressed).toBe(0);
  });
});
