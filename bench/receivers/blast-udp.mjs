// The GELF receiver's self-test load: prebuilt uncompressed GELF datagrams (the size GelfSink sends for a ~200-byte
// line), 128 per event-loop turn, for `ms` milliseconds.
import * as dgram from "node:dgram";
import { makeLine, prng } from "../procs/lines.mjs";

const [port, ms] = process.argv.slice(2).map(Number);
const rand = prng(9);
const payloads = [];
for (let i = 0; i < 64; i++) {
  const l = JSON.parse(makeLine(i, rand));
  payloads.push(Buffer.from(JSON.stringify({ version: "1.1", host: l.hostname, short_message: l.msg, timestamp: l.time / 1000, level: 6, _reqId: l.reqId, _req_method: l.req.method, _req_url: l.req.url, _res_statusCode: l.res.statusCode, _responseTime: l.responseTime, _user: l.user })));
}
const socket = dgram.createSocket("udp4");
socket.connect(port, "127.0.0.1");
await new Promise((r) => socket.once("connect", r));
const until = Date.now() + ms;
let sent = 0;
const burst = () => {
  for (let k = 0; k < 128; k++) socket.send(payloads[sent++ & 63]);
  if (Date.now() < until) setImmediate(burst);
  else setTimeout(() => { process.send({ sent }); socket.close(); process.disconnect(); }, 50);
};
burst();
