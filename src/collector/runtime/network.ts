// The network collector: binds every listener of a NetworkSource, ships what they decode, and turns credit into
// backpressure (TCP/HTTP stop reading; UDP drops, counted). Listeners decode in slices and stop within a slice once
// push() says the credit is spent (slices.ts), so the host never gets more than a few dozen records past its
// window. READY carries the bound addresses for the host.
//
//   gelf+udp ─┐
//   udp      ─┤
//   gelf+tcp ─┤                       ┌─ push() false ─▶ pause every listener ─┐
//   tcp/tls  ─┼─▶ Intake (records) ───┤                                        │
//   http(s)  ─┘                       └─ channel ─▶ host ─▶ CREDIT ─▶ resume ◀─┘
import { performance } from "node:perf_hooks";
import type { NetworkListenerSpec, NetworkSpec } from "../../sources/specs.js";
import { newCounters, snapshotCounters } from "../network/counters.js";
import { listenHttp } from "../network/http-listener.js";
import { Intake } from "../network/intake.js";
import type { Listener } from "../network/listener.js";
import { PartialBudget, listenStream } from "../network/stream-listener.js";
import { slicesFor } from "../network/slices.js";
import { listenUdp } from "../network/udp-listener.js";
import type { ChildChannel } from "./channel.js";
import type { CollectorRun } from "./run.js";

/** Graylog's decompress_size_limit: the GELF UDP default of `maxMessageBytes`. */
const GELF_MAX_DECOMPRESSED = 8 * 1024 * 1024;
/** With UDP and other listeners, 1/this of the credit window is kept for UDP. */
const UDP_RESERVE_DIVISOR = 8;
/** How often expired GELF chunk sets are swept (Graylog sweeps every second too, so the window is 5–6 s). */
const SWEEP_MS = 1_000;

export async function runNetwork(spec: NetworkSpec, channel: ChildChannel): Promise<CollectorRun> {
  const counters = newCounters();
  const listeners: Listener[] = [];
  let paused = false;
  let failed: ((exit: { code: number | null; signal: null; error: string }) => void) | undefined;
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string }>((resolve) => {
    failed = resolve;
  });
  const pause = (): void => {
    if (paused) return;
    paused = true;
    counters.pauses++;
    for (const l of listeners) l.pause();
  };
  const resume = (): void => {
    if (!paused || !intake.hasCredit) return;
    paused = false;
    for (const l of listeners) l.resume();
  };
  const intake = new Intake(
    { source: spec.name, fields: spec.fields, parser: spec.parser ?? "json", maxGelfBytes: spec.maxMessageBytes ?? GELF_MAX_DECOMPRESSED },
    channel,
    counters,
    pause,
  );
  // A backlog in the channel does not hold the listeners back: only credit does (see ChildChannel.limitBacklog).
  channel.limitBacklog = false;
  const w = channel.creditWindow;
  intake.slices = slicesFor(w);
  // UDP cannot wait for credit, streams and HTTP can: with both, an eighth of the window is kept for UDP, and the
  // others pause at that line and resume on the credit frame that lifts them over it. They stop within a slice, so
  // the reserve is a slice larger (at most half the window); in bytes, three slices (a record can be more than twice
  // its line: a line without a message is copied into `message`).
  const isUdp = (l: NetworkListenerSpec): boolean => l.protocol === "gelf+udp" || l.protocol === "udp";
  if (spec.listeners.some(isUdp) && !spec.listeners.every(isUdp)) {
    const reserve = (window: number, slice: number): number => Math.min(Math.floor(window / 2), Math.floor(window / UDP_RESERVE_DIVISOR) + slice);
    intake.reserveForUdp(reserve(w.records, intake.slices.messages), reserve(w.bytes, 3 * intake.slices.bytes));
    channel.onCreditFrame = resume;
  }
  // A listener that breaks after it was bound ends this incarnation; the supervisor restarts it with backoff.
  const onFailure = (message: string): void => failed?.({ code: null, signal: null, error: `listener failed: ${message}` });
  const chunkLimits = {
    timeoutMs: spec.gelf.chunkTimeoutMs,
    maxPendingMessages: spec.gelf.maxPendingMessages,
    maxPendingBytes: spec.gelf.maxPendingBytes,
    maxMessageBytes: spec.maxMessageBytes ?? GELF_MAX_DECOMPRESSED,
  };
  // One budget for the partial messages of every TCP/TLS connection: memory is per process, not per listener.
  const budget = new PartialBudget(spec.maxPartialBytes);
  const open = (l: NetworkListenerSpec): Promise<Listener> => {
    switch (l.protocol) {
      case "gelf+udp":
      case "udp":
        return listenUdp(l, intake, chunkLimits, onFailure);
      case "http":
      case "https":
      case "gelf+http":
      case "gelf+https":
        return listenHttp(l, spec, intake, onFailure);
      default:
        return listenStream(l, spec, intake, budget, onFailure);
    }
  };
  try {
    // In order, so READY's addresses line up with the `listen` list.
    for (const l of spec.listeners) listeners.push(await open(l));
  } catch (error) {
    await Promise.all(listeners.map((l) => l.close()));
    const e = error as NodeJS.ErrnoException;
    const at = spec.listeners[listeners.length]!;
    throw new Error(`cannot listen on ${at.protocol}://${at.host}:${at.port}: ${e.code ?? ""} ${e.message}`.replace(/\s+/g, " "));
  }
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const l of listeners) l.tick?.(now);
  }, SWEEP_MS);
  sweeper.unref();
  let closed: Promise<void> | undefined;
  const closeAll = (): Promise<void> => {
    closed ??= (async () => {
      clearInterval(sweeper);
      await Promise.all(listeners.map((l) => l.close()));
      channel.flush();
    })();
    return closed;
  };
  void done.then(closeAll);
  return {
    pause,
    resume,
    done,
    info: { addresses: listeners.map((l) => l.bound) },
    stop: () => closeAll(),
    counters: () => snapshotCounters(counters),
  };
}
