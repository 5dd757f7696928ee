// redact(): credentials in free text never survive, however the URL was written.
import { describe, expect, it } from "vitest";
import { redact, safeUrl } from "../../../src/util/redact.js";

describe("redact", () => {
  it.each([
    ["a percent-encoded password", "http://elastic:s3cr%2Ft@es:9200/_bulk", "s3cr%2Ft"],
    ["a raw `/` in the password (an invalid URL)", "Invalid URL (http://elastic:Zx9/q+Lw3@es.example:9200)", "Zx9/q+Lw3"],
    ["a raw `@` in the password", "connect to http://elastic:p@ss@es:9200 failed", "p@ss"],
    ["both", "https://u:a/b@c@host/x", "a/b@c"],
  ])("masks %s", (_what, text, password) => {
    const out = redact(text);
    expect(out).not.toContain(password);
    expect(out).toContain("[redacted]@");
    expect(safeUrl(text.slice(text.indexOf("http")).split(/[\s)]/)[0]!)).not.toContain(password);
  });

  it("leaves URLs without credentials and ordinary text alone", () => {
    const text = "POST http://127.0.0.1:9200/_bulk answered 503; mail ops@example.com";
    expect(redact(text)).toBe(text);
  });
});
