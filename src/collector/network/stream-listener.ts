// TCP and TLS listeners: GELF frames (`gelf+tcp`, `gelf+tls`) or lines (`tcp`, `tls`). Out of credit, every
// connection stops being read, so the kernel buffers fill and senders block in write(): backpressure end to end.
import { type Server, type Socket, createServer as createTcpServer } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { NetworkListenerSpec, NetworkSpec } from "../../sources/specs.js";
import { LineSplitter } from "../line-splitter.js";
import { FrameSplitter } from "./frame-splitter.js";
import { type Intake, peerOf } from "./intake.js";
import { type BoundAddress, type Listener, type ListenerFailure, listenServer, tlsServerOptions } from "./listener.js";

/** Keep-alive probes find peers that vanished without a FIN (a rebooted sender), so their sockets are freed. */
const KEEPALIVE_MS = 60_000;

interface Decoder {
  push(chunk: Buffer): void;
  flush(): void;
}

class StreamListener implements Listener {
  private readonly sockets = new Set<Socket>();
  private paused = false;

  constructor(
    private readonly server: Server,
    readonly bound: BoundAddress,
    onFailure: ListenerFailure,
  ) {
    server.on("error", (error) => onFailure(`${bound.url}: ${error.message}`));
  }

  adopt(socket: Socket, decoder: Decoder, intake: Intake): void {
    intake.counters.connections++;
    this.sockets.add(socket);
    socket.setKeepAlive(true, KEEPALIVE_MS);
    socket.on("data", (chunk: Buffer) => {
      intake.counters.bytesRead += chunk.length;
      intake.stamp();
      decoder.push(chunk);
    });
    socket.on("end", () => {
      intake.stamp();
      decoder.flush();
    });
    socket.on("error", () => {
      intake.counters.connectionErrors++;
    });
    socket.on("close", () => this.sockets.delete(socket));
    if (this.paused) socket.pause();
  }

  pause(): void {
    this.paused = true;
    for (const s of this.sockets) s.pause();
  }

  resume(): void {
    this.paused = false;
    for (const s of this.sockets) s.resume();
  }

  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // What was read is already pushed; a partial frame or line in a decoder is the sender's to resend.
    for (const s of this.sockets) s.destroy();
    return closed;
  }
}

export async function listenStream(
  spec: NetworkListenerSpec,
  network: Pick<NetworkSpec, "maxMessageBytes" | "maxConnections" | "tls">,
  intake: Intake,
  onFailure: ListenerFailure,
): Promise<Listener> {
  const gelf = spec.protocol === "gelf+tcp" || spec.protocol === "gelf+tls";
  const secure = spec.protocol === "gelf+tls" || spec.protocol === "tls";
  // GELF TCP frames are uncompressed JSON: Graylog's default frame limit is 2 MiB, lines default to 1 MiB.
  const maxBytes = network.maxMessageBytes ?? (gelf ? 2 * 1024 * 1024 : 1024 * 1024);
  const tlsOptions = secure ? await tlsServerOptions(network.tls) : undefined;
  let listener: StreamListener | undefined;
  const onConnection = (socket: Socket): void => {
    if (listener === undefined) {
      socket.destroy();
      return;
    }
    const peer = peerOf(socket.remoteAddress, socket.remotePort);
    const decoder: Decoder = gelf
      ? new FrameSplitter(maxBytes, (frame) => intake.gelf(frame, peer), () => {
          intake.counters.linesRead++;
          intake.counters.gelfTooLarge++;
        })
      : new LineSplitter({ maxLineBytes: maxBytes, overlong: "truncate" }, (line, _s, _e, flags) => intake.line(line, flags, peer));
    listener.adopt(socket, decoder, intake);
  };
  const { server, bound } = await listenServer(
    spec,
    network,
    () => (tlsOptions === undefined ? createTcpServer(onConnection) : createTlsServer(tlsOptions, onConnection)),
    tlsOptions === undefined ? undefined : () => intake.counters.tlsErrors++,
  );
  listener = new StreamListener(server, bound, onFailure);
  return listener;
}
