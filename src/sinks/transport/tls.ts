// TLS options of the network sinks: verification on by default, turning it off needs an option named for what it does.
import type { ConnectionOptions } from "node:tls";
import { isIP } from "node:net";
import { InvalidOptionError, SinkError } from "../../errors.js";
import { describe } from "../../pipeline/serialize.js";

type Pem = string | Buffer | readonly (string | Buffer)[];

/** TLS settings for `tls://` and `https://` endpoints. */
export interface SinkTlsOptions {
  /** CA certificate(s) to trust instead of Node's bundled roots (PEM). @default Node's root store */
  ca?: Pem;
  /** Client certificate chain (PEM), for servers that require mutual TLS (Logstash's TCP input does by default). */
  cert?: Pem;
  /** Client private key (PEM). */
  key?: Pem;
  /** Passphrase of `key`. */
  passphrase?: string;
  /** Server name for SNI and certificate checks. @default the URL's host (when it is not an IP address) */
  servername?: string;
  /**
   * Only `true` is accepted: verification is always on unless `insecureSkipVerify` says otherwise.
   * @default true
   */
  rejectUnauthorized?: true;
  /**
   * Accept any server certificate (self-signed, wrong host, expired). Man-in-the-middle attacks become possible.
   * @default false
   */
  insecureSkipVerify?: boolean;
  /** Lowest protocol version. @default "TLSv1.2" */
  minVersion?: "TLSv1.2" | "TLSv1.3";
}

const PEM_FIELDS = ["ca", "cert", "key"] as const;

function isPem(v: unknown): boolean {
  if (typeof v === "string" || Buffer.isBuffer(v)) return true;
  return Array.isArray(v) && v.every((x) => typeof x === "string" || Buffer.isBuffer(x));
}

/** Validate and turn the public TLS options into node:tls options for one host. */
export function resolveTls(value: unknown, hostname: string): ConnectionOptions {
  if (value !== undefined && (value === null || typeof value !== "object" || Array.isArray(value))) {
    throw new InvalidOptionError(`Expected \`tls\` to be an object, got ${describe(value)}`);
  }
  const t = (value ?? {}) as SinkTlsOptions;
  for (const f of PEM_FIELDS) {
    if (t[f] !== undefined && !isPem(t[f])) {
      throw new InvalidOptionError(`Expected \`tls.${f}\` to be a PEM string, Buffer or array of them, got ${describe(t[f])}`);
    }
  }
  if ((t.cert === undefined) !== (t.key === undefined)) {
    throw new InvalidOptionError(
      `Expected \`tls.cert\` and \`tls.key\` to be set together, got only \`tls.${t.cert === undefined ? "key" : "cert"}\``,
    );
  }
  if (t.rejectUnauthorized !== undefined && t.rejectUnauthorized !== true) {
    throw new InvalidOptionError(
      `Expected \`tls.rejectUnauthorized\` to be true (set \`tls.insecureSkipVerify: true\` to turn verification off), got ${describe(t.rejectUnauthorized)}`,
    );
  }
  if (t.insecureSkipVerify !== undefined && typeof t.insecureSkipVerify !== "boolean") {
    throw new InvalidOptionError(`Expected \`tls.insecureSkipVerify\` to be a boolean, got ${describe(t.insecureSkipVerify)}`);
  }
  if (t.minVersion !== undefined && t.minVersion !== "TLSv1.2" && t.minVersion !== "TLSv1.3") {
    throw new InvalidOptionError(`Expected \`tls.minVersion\` to be "TLSv1.2" or "TLSv1.3", got ${describe(t.minVersion)}`);
  }
  if (t.servername !== undefined && (typeof t.servername !== "string" || t.servername.length === 0)) {
    throw new InvalidOptionError(`Expected \`tls.servername\` to be a non-empty string, got ${describe(t.servername)}`);
  }
  const out: ConnectionOptions = {
    rejectUnauthorized: t.insecureSkipVerify !== true,
    minVersion: t.minVersion ?? "TLSv1.2",
  };
  if (t.ca !== undefined) out.ca = t.ca as ConnectionOptions["ca"];
  if (t.cert !== undefined) out.cert = t.cert as ConnectionOptions["cert"];
  if (t.key !== undefined) out.key = t.key as ConnectionOptions["key"];
  if (t.passphrase !== undefined) out.passphrase = t.passphrase;
  // SNI must not carry an IP address (RFC 6066); Node still checks the IP against the certificate's SANs.
  const servername = t.servername ?? (isIP(hostname) === 0 ? hostname : undefined);
  if (servername !== undefined) out.servername = servername;
  return out;
}

const TLS_VERIFY_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** True for certificate verification failures and TLS alerts (e.g. the server demanded a client certificate). */
export function isTlsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return TLS_VERIFY_CODES.has(code) || code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_");
}

/** Wrap a TLS failure in a coded error whose message names the cause but never the credentials. */
export function tlsError(sink: string, display: string, cause: unknown): SinkError {
  const code = String((cause as { code?: unknown }).code);
  const err = new SinkError("ERR_TLS", `TLS with ${display} failed (${code}): ${(cause as Error).message}`, { sink, cause });
  return err;
}
