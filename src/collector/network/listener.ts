// The contract between the network collector and each of its listeners (UDP, TCP/TLS, HTTP), and the TLS server
// options they share. Listeners decode; the Intake builds and ships records.
import { readFile } from "node:fs/promises";
import type { Server } from "node:net";
import type { TlsOptions } from "node:tls";
import type { NetworkListenerSpec, NetworkProtocol, NetworkSpec } from "../../sources/specs.js";

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
  /** Periodic housekeeping (GELF chunk expiry). */
  tick?(now: number): void;
  /** Stop accepting and reading; resolves when closed. Pending partial input is counted, not shipped. */
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

/**
 * Listen with a TCP-based server (plain TCP, TLS, HTTP, HTTPS) made by `create`: preferred port first, connection
 * cap, TLS handshake failures counted. Returns the server listening and the address it bound.
 */
export async function listenServer<S extends Server>(
  spec: NetworkListenerSpec,
  network: Pick<NetworkSpec, "maxConnections">,
  create: () => S,
  onTlsError: (() => void) | undefined,
): Promise<{ server: S; bound: BoundAddress }> {
  const server = await bindPreferred(
    spec,
    (port) =>
      new Promise<S>((resolve, reject) => {
        const s = create();
        s.maxConnections = network.maxConnections;
        s.once("error", reject);
        s.listen(port, spec.host, () => {
          s.removeListener("error", reject);
          resolve(s);
        });
      }),
  );
  if (onTlsError !== undefined) server.on("tlsClientError", onTlsError);
  const a = server.address();
  const bound = typeof a === "object" && a !== null ? boundAddress(spec, a.address, a.port) : boundAddress(spec, spec.host, spec.port);
  return { server, bound };
}
