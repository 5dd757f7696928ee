// Test PKI made at run time with the openssl CLI (present on these machines; no extra dev dependency): a CA, a server
// certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA. Cached per test process.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
}

let cached: TestPki | undefined;

const OPENSSL = process.env.OPENSSL ?? "openssl";

function run(dir: string, args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

export function testPki(): TestPki {
  if (cached !== undefined) return cached;
  const dir = mkdtempSync(join(tmpdir(), "cla-pki-"));
  try {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(dir, ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=child-log-agg test CA", "-days", "2",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n");
    writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
    for (const who of ["server", "client"]) {
      run(dir, ["req", ...ec, "-keyout", `${who}.key`, "-out", `${who}.csr`, "-subj", `/CN=${who === "server" ? "localhost" : "test-client"}`]);
      run(dir, ["x509", "-req", "-in", `${who}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${who}.crt`,
        "-days", "2", "-extfile", `${who}.ext`]);
    }
    const read = (f: string): string => readFileSync(join(dir, f), "utf8");
    cached = {
      ca: read("ca.crt"),
      serverKey: read("server.key"),
      serverCert: read("server.crt"),
      clientKey: read("client.key"),
      clientCert: read("client.crt"),
    };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
