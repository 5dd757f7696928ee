// W5's load generator (not measured: it stands for the other hosts): streams a data file into a TCP port as fast as
// the connection takes it, then closes. Usage: node tcp-send.mjs <file> <port>
import { createReadStream } from "node:fs";
import { connect } from "node:net";

const [file, port] = process.argv.slice(2);
const socket = connect(Number(port), "127.0.0.1", () => {
  createReadStream(file, { highWaterMark: 1 << 20 }).pipe(socket);
});
socket.on("error", (error) => {
  process.stderr.write(`tcp-send: ${error.message}\n`);
  process.exitCode = 1;
});
