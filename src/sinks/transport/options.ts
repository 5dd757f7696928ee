// Option checks shared by the network sinks, so every sink words "Expected …, got …" the same way.
import { InvalidOptionError } from "../../errors.js";
import { describe } from "../../pipeline/serialize.js";

import { checkKeys, intOption, optionKeys } from "../../util/validate.js";

export { boolOption, enumOption, intOption, nameOption } from "../../util/validate.js";

/** Validate optional extra HTTP headers: a plain object of string values. */
export function headersOption(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidOptionError(`Expected \`headers\` to be an object of strings, got ${describe(value)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    // Do not echo the value: a header is a likely place for a token.
    if (typeof v !== "string") {
      throw new InvalidOptionError(`Expected \`headers.${k}\` to be a string, got ${typeof v === "object" ? describe(v) : `a ${typeof v}`}`);
    }
    out[k.toLowerCase()] = v;
  }
  return out;
}

/** Reconnect backoff of the stream transports (the engine's retry policy is separate). */
export interface ReconnectOptions {
  /** First delay after a failed connect; doubles per failure. @default 500 */
  initialDelayMs?: number;
  /** Cap of the delay. @default 30000 */
  maxDelayMs?: number;
}

export interface ResolvedReconnect {
  initialDelayMs: number;
  maxDelayMs: number;
}

const RECONNECT_KEYS = optionKeys<ReconnectOptions>()(["initialDelayMs", "maxDelayMs"]);

export function reconnectOption(value: unknown): ResolvedReconnect {
  if (value !== undefined && (value === null || typeof value !== "object" || Array.isArray(value))) {
    throw new InvalidOptionError(`Expected \`reconnect\` to be an object, got ${describe(value)}`);
  }
  checkKeys("reconnect", value, RECONNECT_KEYS);
  const r = (value ?? {}) as ReconnectOptions;
  const initialDelayMs = intOption("reconnect.initialDelayMs", r.initialDelayMs, 500, 0, 3_600_000);
  const maxDelayMs = intOption("reconnect.maxDelayMs", r.maxDelayMs, 30_000, initialDelayMs, 3_600_000);
  return { initialDelayMs, maxDelayMs };
}

/** A parsed endpoint URL with credentials split off, so nothing downstream can print them. */
export interface Endpoint {
  protocol: string;
  hostname: string;
  port: number;
  /** Path plus query exactly as configured (HTTP only). */
  path: string;
  /** The URL without userinfo: safe for messages and metrics. */
  display: string;
  username?: string;
  password?: string;
}

export function endpointOption(value: unknown, allowed: readonly string[], defaultPorts: Record<string, number>): Endpoint {
  let url: URL;
  try {
    if (typeof value !== "string" && !(value instanceof URL)) throw new TypeError("not a string");
    url = new URL(String(value));
  } catch {
    // describe() of the raw string could show a password; say only what kind of value it was.
    throw new InvalidOptionError(
      `Expected \`url\` to be a URL with scheme ${allowed.map((s) => `${s}//`).join(", ")}, got ${typeof value === "string" ? "an unparseable string" : describe(value)}`,
    );
  }
  const protocol = url.protocol;
  if (!allowed.includes(protocol)) {
    throw new InvalidOptionError(
      `Expected \`url\` to use one of ${allowed.map((s) => `${s}//`).join(", ")}, got \`${protocol}//\``,
    );
  }
  if (url.hostname.length === 0) throw new InvalidOptionError("Expected `url` to name a host, got an empty host");
  const port = url.port === "" ? defaultPorts[protocol] : Number(url.port);
  if (port === undefined) throw new InvalidOptionError(`Expected \`url\` to include a port for ${protocol}//, got none`);
  const username = url.username === "" ? undefined : decodeURIComponent(url.username);
  const password = url.password === "" ? undefined : decodeURIComponent(url.password);
  url.username = "";
  url.password = "";
  // IPv6 literals keep their brackets in URL.hostname; node:net wants them bare.
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  // Errors name the endpoint without its query: a signature or key there (`?sig=…`) is a credential.
  const query = url.href.indexOf("?");
  const display = query < 0 ? url.href : `${url.href.slice(0, query)}?…`;
  const out: Endpoint = { protocol, hostname, port, path: url.pathname + url.search, display };
  if (username !== undefined) out.username = username;
  if (password !== undefined) out.password = password;
  return out;
}

/** Basic credentials from the `auth` option or the URL's userinfo (the option wins). */
export function resolveAuth(value: unknown, ep: Endpoint): { username: string; password: string } | undefined {
  if (value !== undefined) {
    const a = value as { username?: unknown; password?: unknown } | null;
    if (a === null || typeof a !== "object" || typeof a.username !== "string" || typeof a.password !== "string") {
      throw new InvalidOptionError(`Expected \`auth\` to be an object with string \`username\` and \`password\`, got ${a === null || typeof a !== "object" ? describe(a) : "an object without both strings"}`);
    }
    if (!ep.protocol.startsWith("http")) {
      throw new InvalidOptionError(`Expected \`auth\` only with http:// or https://, got ${ep.protocol}//`);
    }
    return { username: a.username, password: a.password };
  }
  if (ep.username !== undefined || ep.password !== undefined) return { username: ep.username ?? "", password: ep.password ?? "" };
  return undefined;
}
