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

  it("masks every URL of a line, each up to the last `@` of its run of non-space", () => {
    expect(redact("a http://u:p1@h1 b https://v:p2@h2/x c")).toBe("a http://u:[redacted]@h1 b https://v:[redacted]@h2/x c");
    // In one run the first URL's password runs to the run's last `@`: what follows it is masked with it.
    expect(redact("x://u:p@h,y://v:q@k")).toBe("x://u:[redacted]@k");
    expect(redact("s3://key:secret@bucket ftp://anon:@host")).toBe("s3://key:[redacted]@bucket ftp://anon:[redacted]@host");
    expect(redact("no.at://u:pass here@later")).toBe("no.at://u:pass here@later");
  });

  it("takes time in proportion to the text on lines built against it (quadratic before: minutes at 1 MB)", () => {
    const prefixes = "a://b:".repeat(170_000); // a million characters of `scheme://user:`, no `@`
    expect(redact(prefixes)).toBe(prefixes);
    const words = "a.".repeat(500_000); // a word boundary every two characters, no `://`
    expect(redact(words)).toBe(words);
    const many = "x://u:p@h ".repeat(100_000);
    expect(redact(many)).toBe("x://u:[redacted]@h ".repeat(100_000));
    const spaced = "a://b: ".repeat(150_000); // many runs, none with an `@`
    expect(redact(spaced)).toBe(spaced);
    const glued = `${"a://b:".repeat(100_000)}@host`;
    expect(redact(glued)).toBe("a://b:[redacted]@host");
  });
});
