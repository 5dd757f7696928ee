// The contract between the network collector and each of its listeners (UDP, TCP/TLS, HTTP), and the TLS server
// options they share. Listeners decode; the Intake builds and ships records.
import { readFile } from "node:fs/promises";
import type { Server, Socket } from "node:net";
import type { TlsOptions } from "node:tls";
import type { NetworkListenerSpec, NetworkProtocol, NetworkSpec } from "../../sources/specs.js";
import type { NetworkCounters } from "./counters.js";

/** A listener as bound (what READY reports to the host; NetworkSource.addresses). */
export interface BoundAddress {
  url: string;
  protocol: NetworkProtocol;
  address: string;
  port: number;
}

export interface Listener {
  readonly bound: BoundAddress;
  /** Out of credit: stop reading (TCP/HTTP) — UDP keeps receiving and counts its drops. */
  pause(): void;
  resume(): void;
  /** Periodic housekeeping (GELF chunk expiry, the kernel's UDP drop count); `now` is `performance.now()`. */
  tick?(now: number): void;
  /**
   * Stop accepting and reading; resolves when closed. Pending partial input is counted (`partialDiscarded`), not
   * shipped; what is still unread in sockets is the sender's (TCP gives no acknowledgement).
   */
  close(): Promise<void>;
}

/** Raised after bind when a listener can no longer work (the collector restarts). */
export type ListenerFailure = (message: string) => void;

/** `localhost:0` → the URL users pass to senders: IPv6 in brackets, the actual port. */
export function boundAddress(spec: NetworkListenerSpec, address: string, port: number): BoundAddress {
  const host = address.includes(":") ? `[${address}]` : address;
  return { url: `${spec.protocol}://${host}:${port}${spec.path ?? ""}`, protocol: spec.protocol, address, port };
}

async function pem(value: string): Promise<string> {
  return value.includes("-----BEGIN") ? value : readFile(value, "utf8");
}

/** TLS server options from the spec; files are read at every start, so renewed certificates are picked up. */
export async function tlsServerOptions(tls: NetworkSpec["tls"]): Promise<TlsOptions> {
  if (tls === undefined) throw new Error("a TLS listener needs `tls` options");
  const out: TlsOptions = {
    cert: await pem(tls.cert),
    key: await pem(tls.key),
    minVersion: "TLSv1.2",
    requestCert: tls.requireClientCert,
    rejectUnauthorized: tls.requireClientCert,
    // Node's default is 120 s, and a handshake that times out is only reported (tlsClientError), never closed: see
    // listenServer, which closes it.
    handshakeTimeout: tls.handshakeTimeoutMs,
  };
  if (tls.ca !== undefined) out.ca = await pem(tls.ca);
  if (tls.passphrase !== undefined) out.passphrase = tls.passphrase;
  return out;
}

/**
 * Bind with the preferred port first (the one an earlier incarnation had, for `port: 0`); if someone else took it
 * meanwhile, fall back to the configured port rather than fail the restart.
 */
export async function bindPreferred<T>(spec: NetworkListenerSpec, bind: (port: number) => Promise<T>): Promise<T> {
  if (spec.preferPort !== undefined) {
    try {
      return await bind(spec.preferPort);
    } catch {
      // taken: a new free port below
    }
  }
  return bind(spec.port);
}

/** A TCP-based server listening, with every socket it accepted (raw TCP, before any TLS handshake). */
export interface ListeningServer<S extends Server> {
  server: S;
  bound: BoundAddress;
  /** Accepted connections, TLS handshakes in progress included, until they close. */
  sockets: Set<Socket>;
}

/**
 * Listen with a TCP-based server (plain TCP, TLS, HTTP, HTTPS) made by `create`: preferred port first, connection
 * cap (refusals counted), TLS handshake failures counted and closed (a handshake that timed out would otherwise hold
 * its socket, and its `maxConnections` slot, until the peer leaves). Returns the server listening and the address
 * it bound.
 */
export async function listenServer<S extends Server>(
  spec: NetworkListenerSpec,
  network: Pick<NetworkSpec, "maxConnections">,
  create: () => S,
  counters: Pick<NetworkCounters, "connectionsRefused" | "tlsErrors">,
  tls: boolean,
): Promise<ListeningServer<S>> {
  const sockets = new Set<Socket>();
  const server = await bindPreferred(
    spec,
    (port) =>
      new Promise<S>((resolve, reject) => {
        const s = create();
        s.maxConnections = network.maxConnections;
        s.on("connection", (socket: Socket) => {
          sockets.add(socket);
          socket.once("close", () => sockets.delete(socket));
        });
        s.once("error", reject);
        s.listen(port, spec.host, () => {
          s.removeListener("error", reject);
          resolve(s);
        });
      }),
  );
  server.on("drop", () => counters.connectionsRefused++);
  if (tls) {
    server.on("tlsClientError", (_error: Error, socket: Socket) => {
      counters.tlsErrors++;
      socket.destroy();
    });
  }
  const a = server.address();
  const bound = typeof a === "object" && a !== null ? boundAddress(spec, a.address, a.port) : boundAddress(spec, spec.host, spec.port);
  return { server, bound, sockets };
}

/**
 * Stop listening and close every accepted socket, handshakes in progress included: `server.close()` resolves only
 * once the last one is gone, so one lurking client would otherwise hold stop() to its deadline.
 */
export function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const s of sockets) s.destroy();
  return closed;
}
