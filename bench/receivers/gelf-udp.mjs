// A loopback GELF UDP receiver for the benchmark, in its own process, with the largest receive buffer the kernel
// allows (net.core.rmem_max). It counts whole messages (unchunked datagrams, and chunked messages once every chunk
// of an id arrived) and reports the kernel's drop counter for its socket (/proc/net/udp), so lost datagrams are
// measured, not guessed. `ceiling` measures it with a blaster process sending prebuilt datagrams.
// The datagram loop runs in gelf-udp-counter.py when python3 is there (Node's per-datagram event caps near 80k/s
// here, below the 150k msgs/s W3 must be able to show); otherwise in this process.
//
// IPC: { cmd: "expect", n, latency } resets; { cmd: "stats" }; { cmd: "ceiling", ms }.
import * as dgram from "node:dgram";
import { fork, spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync, inflateSync } from "node:zlib";
import { epochNow } from "../procs/lines.mjs";

const REQUESTED_BUFFER = 64 * 1024 * 1024;
const WTS = Buffer.from('wts":');
const usePython = process.env.BENCH_GELF_NODE !== "1" && spawnSync("python3", ["--version"]).status === 0;

let port;
let socket;
let py;
let pyLines;
if (usePython) {
  py = spawn("python3", [fileURLToPath(new URL("./gelf-udp-counter.py", import.meta.url))], { stdio: ["pipe", "pipe", "inherit"] });
  const rl = createInterface({ input: py.stdout });
  const queue = [];
  const waiters = [];
  rl.on("line", (l) => (waiters.length > 0 ? waiters.shift()(JSON.parse(l)) : queue.push(JSON.parse(l))));
  pyLines = () => new Promise((resolve) => (queue.length > 0 ? resolve(queue.shift()) : waiters.push(resolve)));
  const hello = await pyLines();
  port = hello.port;
  py.rcvbuf = hello.rcvbuf;
} else {
  socket = dgram.createSocket({ type: "udp4" });
  await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
  socket.setRecvBufferSize(REQUESTED_BUFFER); // capped by rmem_max; the effective size is reported
  port = socket.address().port;
}

let messages = 0;
let datagrams = 0;
let firstAt = 0;
let lastAt = 0;
let latency = false;
let latencies = [];
let pending = new Map();
let dropsAtReset = 0;
let cpuAtReset = process.cpuUsage();
let invalid = 0;

/** The kernel's drop counter for this socket (last column of its /proc/net/udp row). */
function kernelDrops() {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  for (const line of readFileSync("/proc/net/udp", "utf8").split("\n")) {
    if (line.includes(`0100007F${hex}`)) return Number(line.trim().split(/\s+/).at(-1));
  }
  return 0;
}

async function reset(wantLatency) {
  if (py !== undefined) {
    py.stdin.write(`reset ${wantLatency ? 1 : 0}\n`);
    await pyLines();
  }
  messages = datagrams = invalid = 0;
  firstAt = lastAt = 0;
  latency = wantLatency;
  latencies = [];
  pending = new Map();
  dropsAtReset = kernelDrops();
  cpuAtReset = process.cpuUsage();
}

function complete(payload) {
  messages++;
  if (!latency) return;
  let text = payload;
  if (payload[0] === 0x1f && payload[1] === 0x8b) text = gunzipSync(payload);
  else if (payload[0] === 0x78) text = inflateSync(payload);
  const w = text.indexOf(WTS);
  if (w !== -1) latencies.push(epochNow() - Number.parseFloat(text.toString("latin1", w + 5, w + 30)));
}

socket?.on("message", (buf) => {
  datagrams++;
  lastAt = epochNow();
  if (firstAt === 0) firstAt = lastAt;
  if (buf.length >= 12 && buf[0] === 0x1e && buf[1] === 0x0f) {
    const id = buf.toString("latin1", 2, 10);
    const count = buf[11];
    let p = pending.get(id);
    if (p === undefined) {
      p = { parts: new Array(count), got: 0 };
      pending.set(id, p);
    }
    if (p.parts[buf[10]] === undefined) {
      p.parts[buf[10]] = buf.subarray(12);
      if (++p.got === count) {
        pending.delete(id);
        complete(Buffer.concat(p.parts));
      }
    }
    return;
  }
  if (buf[0] !== 0x7b && buf[0] !== 0x1f && buf[0] !== 0x78) invalid++;
  complete(buf);
});

function percentiles(values) {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const at = (p) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] * 100) / 100;
  return { n: sorted.length, p50: at(50), p99: at(99), max: at(100) };
}

async function stats() {
  if (py !== undefined) {
    py.stdin.write("stats\n");
    const s = await pyLines();
    return { ...s, kernelDrops: kernelDrops() - dropsAtReset, recvBufferBytes: py.rcvbuf, counter: "python3" };
  }
  const cpu = process.cpuUsage(cpuAtReset);
  return {
    counter: "node",
    cpuSec: (cpu.user + cpu.system) / 1e6,
    messages,
    datagrams,
    incomplete: pending.size,
    invalid,
    kernelDrops: kernelDrops() - dropsAtReset,
    firstAt,
    lastAt,
    recvBufferBytes: socket.getRecvBufferSize(),
    latencyMs: percentiles(latencies),
  };
}

async function ceiling(ms) {
  await reset(false);
  const blaster = fork(fileURLToPath(new URL("./blast-udp.mjs", import.meta.url)), [String(port), String(ms)], { execArgv: [] });
  const sent = await new Promise((resolve) => blaster.once("message", resolve));
  await new Promise((resolve) => blaster.once("exit", resolve));
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the socket buffer empty
  const s = await stats();
  const seconds = (s.lastAt - s.firstAt) / 1000;
  const perSec = Math.round(s.messages / seconds);
  process.stdout.write(
    `[gelf-receiver] ceiling: ${s.kernelDrops === 0 ? "≥ " : ""}${perSec.toLocaleString("en-US")} msgs/s received${s.kernelDrops === 0 ? " (sender-bound: no drops)" : ""} (${s.messages} of ${sent.sent} sent in ${seconds.toFixed(2)} s, ` +
      `kernel drops ${s.kernelDrops}, receive buffer ${s.recvBufferBytes} bytes)\n`,
  );
  return { messagesPerSec: perSec, received: s.messages, sent: sent.sent, kernelDrops: s.kernelDrops, seconds, recvBufferBytes: s.recvBufferBytes };
}

process.on("message", async (m) => {
  if (m.cmd === "expect") {
    await reset(m.latency === true);
    process.send({ event: "ok" });
  } else if (m.cmd === "stats") process.send({ event: "stats", stats: await stats() });
  else if (m.cmd === "ceiling") process.send({ event: "ceiling", ceiling: await ceiling(m.ms) });
  else if (m.cmd === "exit") {
    py?.kill();
    process.exit(0);
  }
});
process.on("disconnect", () => {
  py?.kill();
  process.exit(0);
});
process.send({ event: "listening", port });
