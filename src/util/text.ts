// Text for values the library did not make: what a sink, filter, listener or collector threw or handed back. Such a
// value may have no string form at all (`Object.create(null)`, a `toString` that throws, an Error whose `message`
// getter throws, a revoked Proxy), and the engine builds its error messages on paths that must not throw.
import { describe } from "../pipeline/serialize.js";

/** `String(value)`, or its JSON, or its kind: never throws. */
export function safeText(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return String(value);
  } catch {
    try {
      const json = JSON.stringify(value);
      if (typeof json === "string") return json;
    } catch {
      // fall through to the value's kind
    }
    try {
      return describe(value);
    } catch {
      return "a value that cannot be shown";
    }
  }
}

/** An Error's message (or, for anything else thrown, its text): never throws. */
export function errorText(error: unknown): string {
  try {
    if (error instanceof Error) {
      const message: unknown = error.message;
      return typeof message === "string" ? message : safeText(message);
    }
  } catch {
    return "an error whose message cannot be read";
  }
  return safeText(error);
}
