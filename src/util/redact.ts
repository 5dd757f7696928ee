// Scrubs credentials from text and objects before they reach an error, event, report or metric label.

const REDACTED = "[redacted]";

// scheme://user:password@host → scheme://user:[redacted]@host. The password runs to the last `@` before whitespace:
// a password written into a URL without percent-encoding may hold `/` or `@` (base64 keys do), and stopping at the
// first of them would print the rest. On the safe side: a URL with a port and an `@` later in its path loses a bit.
// Found in two steps (see redactUrls), each linear in the text: a single regex ending in `(\S*)@` scanned to the end
// of the run of non-space from every `scheme://user:` in it, and an unbounded scheme did the same from every word
// after a `.`, so a long line of either (80 KB: 0.7 s and 2.2 s) held up whoever redacted it.
const URL_USER = /\b([a-z][a-z0-9+.-]{0,63}:\/\/)([^/\s:@]*):/gi;
const SPACE = /\s/g;
// Authorization: Basic xxx / Bearer xxx / ApiKey xxx, in headers or messages.
const AUTH_SCHEMES = /\b(Basic|Bearer|ApiKey|Api-Key|Token)\s+[A-Za-z0-9._~+/=-]{4,}/gi;
// key=value or "key":"value" pairs whose key names a secret.
const SECRET_PAIRS =
  /(["']?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|auth|access[_-]?key|private[_-]?key|passphrase|signature|sig|cookie|credentials?|(?:subscription|functions)[_-]?key)["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}]+)/gi;

/**
 * Secret values the library was given (passwords, API keys, tokens, header values): removed wherever they appear,
 * whatever surrounds them. The patterns below catch credentials by their shape; a server or proxy that echoes a
 * request (its custom headers, a password in prose) shows them in shapes no pattern knows.
 */
const knownSecrets = new Set<string>();
/** The most values kept (the oldest go first): sinks made and dropped for ever must not grow it without bound. */
const MAX_KNOWN_SECRETS = 1_024;
/** Shorter values are not scrubbed by value: "pw" or "logs" would cut every word that contains them. */
const MIN_SECRET_LENGTH = 6;

/** Remember a secret value (and how it looks percent-encoded and inside a JSON string), to be redacted by value. */
export function registerSecret(value: unknown): void {
  if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH) return;
  for (const form of new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)])) {
    knownSecrets.delete(form); // re-added last: the most recent stay
    knownSecrets.add(form);
  }
  while (knownSecrets.size > MAX_KNOWN_SECRETS) knownSecrets.delete(knownSecrets.values().next().value!);
}

/**
 * Headers whose values are credentials (Authorization, X-Api-Key, Cookie, X-Auth-Token, Ocp-Apim-Subscription-Key…).
 * Other header values (a tenant id such as `X-Scope-OrgID: logs`) would cut ordinary words out of every message.
 */
const SECRET_HEADER = /auth|key|token|secret|cookie|session|signature|password|credential/i;

/** Query parameters of a sink's URL whose values are treated as secrets (signatures, keys, tokens, codes). */
const SECRET_QUERY_KEY = /sig|key|token|secret|pass|pwd|auth|credential|code|session/i;

/** Register the values of credential-named headers (see SECRET_HEADER). */
function registerHeaders(headers: unknown): void {
  if (typeof headers !== "object" || headers === null) return;
  for (const [name, value] of Object.entries(headers)) {
    if (!SECRET_HEADER.test(name)) continue;
    registerSecret(value);
    // "Bearer xyz", "ApiKey xyz": the credential after the scheme, on its own too.
    if (typeof value === "string") registerSecret(/^\S+\s+(\S+)$/.exec(value)?.[1]);
  }
}

/**
 * Register the credentials found in a sink's options: `auth` (password, apiKey, bearer; and the Basic and ApiKey
 * header values made of them), values of credential-named headers (the options' own and a node object's),
 * passwords and secret-named query parameters in URLs (`url`, `node`, `nodes`, `proxy`).
 */
export function registerCredentials(options: unknown): void {
  if (typeof options !== "object" || options === null) return;
  const o = options as Record<string, unknown>;
  const auth = o.auth as Record<string, unknown> | undefined;
  if (typeof auth === "object" && auth !== null) {
    registerSecret(auth.password);
    registerSecret(auth.bearer);
    if (typeof auth.username === "string" && typeof auth.password === "string") {
      registerSecret(Buffer.from(`${auth.username}:${auth.password}`).toString("base64"));
    }
    const key = auth.apiKey as unknown;
    if (typeof key === "string") registerSecret(key);
    else if (typeof key === "object" && key !== null) {
      const { id, api_key } = key as { id?: unknown; api_key?: unknown };
      registerSecret(api_key);
      if (typeof id === "string" && typeof api_key === "string") registerSecret(Buffer.from(`${id}:${api_key}`).toString("base64"));
    }
  }
  registerHeaders(o.headers);
  const urls = [o.url, o.proxy, ...(Array.isArray(o.node) ? o.node : [o.node]), ...(Array.isArray(o.nodes) ? o.nodes : [o.nodes])];
  for (const u of urls) {
    // A node given as an object may carry headers of its own.
    if (typeof u === "object" && u !== null && !(u instanceof URL)) registerHeaders((u as { headers?: unknown }).headers);
    const url = typeof u === "object" && u !== null && !(u instanceof URL) ? (u as { url?: unknown }).url : u;
    if (typeof url !== "string" && !(url instanceof URL)) continue;
    try {
      const parsed = new URL(String(url));
      for (const [key, value] of parsed.searchParams) if (SECRET_QUERY_KEY.test(key)) registerSecret(value);
      if (parsed.password !== "") {
        registerSecret(parsed.password);
        registerSecret(decodeURIComponent(parsed.password));
        registerSecret(Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString("base64"));
      }
    } catch {
      // not a URL: the sink's own checks say so
    }
  }
}

function redactKnown(text: string): string {
  for (const secret of knownSecrets) if (text.includes(secret)) text = text.split(secret).join(REDACTED);
  return text;
}

/** Replace credentials in free text (known secret values, URLs with passwords, auth headers, key=value secrets). */
export function redact(text: string): string {
  if (typeof text !== "string" || text.length === 0) return text;
  return redactUrls(knownSecrets.size === 0 ? text : redactKnown(text))
    .replace(AUTH_SCHEMES, (_m, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(SECRET_PAIRS, (_m, key: string, value: string) => {
      const quote = value.startsWith('"') ? '"' : value.startsWith("'") ? "'" : "";
      return `${key}${quote}${REDACTED}${quote}`;
    });
}

/**
 * Each `scheme://user:` followed, before the next whitespace, by an `@`: the text up to the last such `@` is the
 * password. Each run of non-space is searched for its last `@` once, however many URLs it holds.
 */
function redactUrls(text: string): string {
  let out = "";
  /** Copied to `out` up to here. */
  let from = 0;
  /** The run of non-space the last match was in: where it ends, and its last `@`. */
  let runEnd = -1;
  let lastAt = -1;
  URL_USER.lastIndex = 0;
  for (let m = URL_USER.exec(text); m !== null; m = URL_USER.exec(text)) {
    const password = m.index + m[0].length;
    if (password > runEnd) {
      SPACE.lastIndex = password;
      runEnd = SPACE.exec(text)?.index ?? text.length;
      // Within the run only (lastIndexOf would go on through the text before it).
      lastAt = -1;
      for (let i = runEnd - 1; i >= password; i--) {
        if (text.charCodeAt(i) === 64 /* @ */) {
          lastAt = i;
          break;
        }
      }
    }
    if (lastAt < password) continue;
    out += `${text.slice(from, m.index)}${m[1]}${m[2]}:${REDACTED}@`;
    from = lastAt + 1;
    URL_USER.lastIndex = from;
  }
  return from === 0 ? text : out + text.slice(from);
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
