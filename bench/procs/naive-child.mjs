// Baseline (a), child side: reads its source line by line and `process.send`s each line to the parent.
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

const source = JSON.parse(process.argv[2]);
const input =
  source.kind === "file"
    ? createReadStream(source.paths[0])
    : spawn(source.command, source.args, { stdio: ["ignore", "pipe", "inherit"] }).stdout;
const rl = createInterface({ input, crlfDelay: Infinity });
rl.on("line", (line) => process.send(line));
rl.on("close", () => process.send({ eof: true }));
process.on("SIGTERM", () => process.exit(0));
