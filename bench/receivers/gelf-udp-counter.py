# The GELF UDP receiver's hot loop, outside Node: a Node 'message' event per datagram tops out near 80k/s on this
# machine, below the 150k msgs/s the bench must be able to see. A blocking recv loop here is several times faster.
# It counts whole messages (unchunked datagrams; chunked ones once every chunk of an id arrived) and, in latency
# mode, the age of each message's `wts` write timestamp. gelf-udp.mjs drives it over stdin/stdout JSON lines:
#   stdout: {"port": N, "rcvbuf": B} once bound; then one JSON line per "stats" command
#   stdin:  "reset 0|1" (1 = latency; answered {"ok":true}), "stats", "exit"
#
# While datagrams come, it polls: it reads until the socket is empty, then sleeps 1 ms. A receiver blocked in recv
# is woken by every datagram, and on one machine the sender's send call pays for that wake-up: on this 2-core VM, 1M
# datagrams from GelfSink's sender thread took 4.3 s of its CPU against a blocking receiver and 3.8-3.9 s against
# this one, and the receiver's own cost fell from 1.7-2.1 to 1.1-1.4 µs a datagram. A Graylog on another host
# charges the shipper neither. After 100 ms without a datagram it blocks again (between runs it costs nothing). It
# always blocks in latency mode (a 1 ms sleep would show in the figures), and when the kernel granted a receive
# buffer under 4 MiB (the sleep could then overflow it; drops are counted either way).
import json
import os
import socket
import sys
import threading
import time
import zlib

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024 * 1024)  # capped by net.core.rmem_max
sock.bind(("127.0.0.1", 0))
print(json.dumps({"port": sock.getsockname()[1], "rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}), flush=True)

cpu_at_reset = [time.process_time()]
state = {"messages": 0, "datagrams": 0, "invalid": 0, "first": 0.0, "last": 0.0, "latency": False, "lat": [], "pending": {}}
lock = threading.Lock()


def complete(payload):
    state["messages"] += 1
    if not state["latency"]:
        return
    if payload[:2] == b"\x1f\x8b":
        payload = zlib.decompress(payload, 31)
    elif payload[:1] == b"\x78":
        payload = zlib.decompress(payload)
    w = payload.find(b'wts":')
    if w != -1:
        end = w + 5
        while end < len(payload) and payload[end] in b"0123456789.":
            end += 1
        state["lat"].append(time.time() * 1000 - float(payload[w + 5:end]))


# BENCH_GELF_BLOCKING=1: the blocking receiver, to compare.
IDLE_S = 0.1
POLL = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 4 * 1024 * 1024 and os.environ.get("BENCH_GELF_BLOCKING") != "1"


def loop():
    buf = bytearray(65536)
    view = memoryview(buf)
    recv_into = sock.recv_into
    blocking = True
    # When the last datagram came: after IDLE_S without one it blocks again, so it costs nothing between runs.
    heard = 0.0
    while True:
        want_blocking = not POLL or state["latency"] or time.monotonic() - heard > IDLE_S
        if want_blocking != blocking:
            sock.setblocking(want_blocking)
            blocking = want_blocking
        try:
            n = recv_into(buf)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        heard = time.monotonic()
        with lock:
            state["datagrams"] += 1
            now = time.time() * 1000
            if state["first"] == 0:
                state["first"] = now
            state["last"] = now
            if n >= 12 and buf[0] == 0x1E and buf[1] == 0x0F:
                key = bytes(view[2:10])
                count = buf[11]
                p = state["pending"].get(key)
                if p is None:
                    p = state["pending"][key] = [None] * count
                if buf[10] < count and p[buf[10]] is None:
                    p[buf[10]] = bytes(view[12:n])
                    if all(x is not None for x in p):
                        del state["pending"][key]
                        complete(b"".join(p))
                continue
            if buf[0] not in (0x7B, 0x1F, 0x78):
                state["invalid"] += 1
            if state["latency"]:
                complete(bytes(view[:n]))
            else:
                state["messages"] += 1


def percentiles(values):
    if not values:
        return None
    s = sorted(values)
    at = lambda p: round(s[min(len(s) - 1, int(p / 100 * len(s)))], 2)
    return {"n": len(s), "p50": at(50), "p99": at(99), "max": at(100)}


threading.Thread(target=loop, daemon=True).start()
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "reset":
        with lock:
            state.update(messages=0, datagrams=0, invalid=0, first=0.0, last=0.0, latency=cmd[1:] == ["1"], lat=[], pending={})
            cpu_at_reset[0] = time.process_time()
        print('{"ok":true}', flush=True)
    elif cmd[0] == "stats":
        with lock:
            out = {k: state[k] for k in ("messages", "datagrams", "invalid")}
            out.update(incomplete=len(state["pending"]), firstAt=state["first"], lastAt=state["last"], latencyMs=percentiles(state["lat"]))
            out.update(cpuSec=round(time.process_time() - cpu_at_reset[0], 3), polling=POLL)
        print(json.dumps(out), flush=True)
    elif cmd[0] == "exit":
        break
