// The ES receiver's self-test load: prebuilt 5000-document bulk bodies over two keep-alive connections as fast as
// the receiver answers, so what is measured is the receiver (and loopback), not a shipper.
import { Agent, request } from "node:http";
import { makeLine, prng } from "../procs/lines.mjs";

const [port, ms] = process.argv.slice(2).map(Number);
const rand = prng(7);
let body = "";
for (let i = 0; i < 5000; i++) body += '{"create":{}}\n' + makeLine(i, rand) + "\n";
const payload = Buffer.from(body);
const agent = new Agent({ keepAlive: true, maxSockets: 2 });
const until = Date.now() + ms;
let sent = 0;

const one = () =>
  new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: "/_bulk", agent, headers: { "content-type": "application/x-ndjson", "content-length": payload.length } },
      (res) => {
        res.resume();
        res.on("end", resolve);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });

const loop = async () => {
  while (Date.now() < until) {
    await one();
    sent += 5000;
  }
};
await Promise.all([loop(), loop()]);
agent.destroy();
process.send({ sentDocs: sent });
process.disconnect();
