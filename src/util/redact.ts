// Scrubs credentials from text and objects before they reach an error, event, report or metric label.

const REDACTED = "[redacted]";

// scheme://user:password@host → scheme://user:[redacted]@host. The password runs to the last `@` before whitespace:
// a password written into a URL without percent-encoding may hold `/` or `@` (base64 keys do), and stopping at the
// first of them would print the rest. On the safe side: a URL with a port and an `@` later in its path loses a bit.
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):(\S*)@/gi;
// Authorization: Basic xxx / Bearer xxx / ApiKey xxx, in headers or messages.
const AUTH_SCHEMES = /\b(Basic|Bearer|ApiKey|Api-Key|Token)\s+[A-Za-z0-9._~+/=-]{4,}/gi;
// key=value or "key":"value" pairs whose key names a secret.
const SECRET_PAIRS =
  /(["']?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|auth|access[_-]?key|private[_-]?key|passphrase)["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}]+)/gi;

/** Replace credentials in free text (URLs with passwords, auth headers, key=value secrets). */
export function redact(text: string): string {
  if (typeof text !== "string" || text.length === 0) return text;
  return text
    .replace(URL_CREDENTIALS, (_m, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
    .replace(AUTH_SCHEMES, (_m, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(SECRET_PAIRS, (_m, key: string, value: string) => {
      const quote = value.startsWith('"') ? '"' : value.startsWith("'") ? "'" : "";
      return `${key}${quote}${REDACTED}${quote}`;
    });
}

const SECRET_KEY = /^(password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|auth|bearer|access[_-]?key|private[_-]?key|key|passphrase|cert|pfx|proxy-authorization|cookie)$/i;

/** Deep copy of a plain options object with secret-named fields and URL passwords replaced. */
export function redactObject<T>(value: T, depth = 0): T {
  if (depth > 8) return value;
  if (typeof value === "string") return redact(value) as T;
  if (value instanceof URL) return redact(value.href) as T;
  if (Array.isArray(value)) return value.map((v) => redactObject(v, depth + 1)) as T;
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null ? REDACTED : redactObject(v, depth + 1);
    }
    return out as T;
  }
  return value;
}

/** A URL string without userinfo, for labels and messages. */
export function safeUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    if (u.password) u.password = "[redacted]";
    return u.href.replace("%5Bredacted%5D", REDACTED);
  } catch {
    return redact(String(url));
  }
}
