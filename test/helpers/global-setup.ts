// Builds dist/ once before the suite when it is missing: integration tests fork dist/collector/main.cjs.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  if (!existsSync(`${root}/dist/collector/main.cjs`) || process.env.CLA_REBUILD === "1") {
    execFileSync(process.execPath, [`${root}/node_modules/tsup/dist/cli-default.js`], { cwd: root, stdio: "ignore" });
  }
}
