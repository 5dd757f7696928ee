// An HTTP receiver that records each request (method, path, headers, body with Content-Encoding undone) and answers
// with whatever the test's responder says, including never answering.
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import type { TlsOptions } from "node:tls";
import { gunzipSync, inflateSync } from "node:zlib";

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  /** Body after undoing Content-Encoding. */
  readonly body: Buffer;
  /** Bytes as they arrived on the wire. */
  readonly wireBytes: number;
}

export type Responder = (req: ReceivedRequest) => { status: number; headers?: Record<string, string>; body?: string } | "hang";

export class HttpReceiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly sockets = new Set<import("node:net").Socket>();

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    public responder: Responder,
  ) {}

  static async start(responder: Responder = () => ({ status: 200, body: "ok" }), tls?: TlsOptions): Promise<HttpReceiver> {
    let self: HttpReceiver | undefined;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => self!.handle(req, res);
    const server = tls === undefined ? http.createServer(handler) : https.createServer(tls, handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    self = new HttpReceiver(server, (server.address() as AddressInfo).port, responder);
    server.on("connection", (s) => {
      self!.sockets.add(s);
      s.on("close", () => self!.sockets.delete(s));
    });
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const enc = req.headers["content-encoding"];
      let body = raw;
      try {
        if (enc === "gzip") body = gunzipSync(raw);
        else if (enc === "deflate") body = inflateSync(raw);
      } catch {
        res.writeHead(400).end("bad encoding");
        return;
      }
      const rec: ReceivedRequest = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, wireBytes: raw.length };
      this.requests.push(rec);
      const answer = this.responder(rec);
      if (answer === "hang") return;
      res.writeHead(answer.status, answer.headers).end(answer.body ?? "");
    });
  }
}
