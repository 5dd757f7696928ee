// redact(): credentials in free text never survive, however the URL was written.
import { describe, expect, it } from "vitest";
import { redact, registerCredentials, registerSecret, safeUrl } from "../../../src/util/redact.js";

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

describe("secrets known by value", () => {
  it("a registered value is redacted in any shape of text, percent-encoded and JSON-escaped too", () => {
    registerSecret('pw"with/quote');
    expect(redact('user elastic password pw"with/quote refused')).toBe("user elastic password [redacted] refused");
    expect(redact(JSON.stringify({ echo: 'pw"with/quote' }))).toBe('{"echo":"[redacted]"}');
    expect(redact(`?p=${encodeURIComponent('pw"with/quote')}`)).toBe("?p=[redacted]");
    // The patterns alone would have kept part of it: `"password":"pw\"with…` ends at the escaped quote.
    expect(redact(JSON.stringify({ password: 'pw"with/quote' }))).not.toContain("with/quote");
  });

  it("values shorter than 6 characters are not scrubbed by value (they would cut ordinary words)", () => {
    registerSecret("logs1");
    expect(redact("/var/logs1/app.log logs1")).toBe("/var/logs1/app.log logs1");
  });

  it("registerCredentials() knows auth, API keys (and their header forms), header values and URL secrets", () => {
    registerCredentials({
      auth: { username: "u1", password: "authPw-11", apiKey: { id: "keyId-22", api_key: "keySecret-33" }, bearer: "bearer-44" },
      headers: { "X-Custom-Key": "hdrSecret-55", "Content-Type": "application/json", "X-Scope-OrgID": "tenant-logs", Authorization: "Bearer tok-8899aa" },
      nodes: [{ url: new URL("https://u2:urlPw-66@es:9200/?sig=sigValue-77&pipeline=main") }],
    });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    for (const secret of ["authPw-11", b64("u1:authPw-11"), "keySecret-33", b64("keyId-22:keySecret-33"), "bearer-44", "hdrSecret-55", "tok-8899aa", "urlPw-66", "sigValue-77"]) {
      expect(redact(`echo ${secret} end`), secret).toBe("echo [redacted] end");
    }
    // Not secrets: other headers' values (a tenant id), the user name, a query parameter not named like a secret.
    expect(redact("application/json tenant-logs u1 main keyId-22")).toBe("application/json tenant-logs u1 main keyId-22");
  });

  it("masks signature, cookie and subscription-key pairs by their names", () => {
    expect(redact("GET /x?sig=abcd1234&X-Amz-Signature=ffee99")).toBe("GET /x?sig=[redacted]&X-Amz-Signature=[redacted]");
    expect(redact('{"cookie":"sid=1","ocp-apim-subscription-key":"k123"}')).toBe('{"cookie":"[redacted]","ocp-apim-subscription-key":"[redacted]"}');
  });
});

