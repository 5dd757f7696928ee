// A ScriptSource collector module that cannot answer the host: it ships one record, waits for the test's `go` file,
// writes its `spinning` file and spins in a synchronous loop for ever (no frame read, no signal handler run).
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const collectorUrl = new URL("../../src/collector.ts", import.meta.url).href;

/** Writes the module into `dir`; the test creates `go` to start the loop and waits for `spinning`. */
export function busyCollector(dir: string): { module: string; go: string; spinning: string } {
  const module = join(dir, "busy.mjs");
  const go = join(dir, "go");
  const spinning = join(dir, "spinning");
  writeFileSync(
    module,
    `import { existsSync, writeFileSync } from "node:fs";
import { defineCollector } from ${JSON.stringify(collectorUrl)};
export default defineCollector(async ({ emit }) => {
  await emit({ message: "before the loop" });
  await new Promise((resolve) => { const t = setInterval(() => { if (existsSync(${JSON.stringify(go)})) { clearInterval(t); resolve(); } }, 10); });
  writeFileSync(${JSON.stringify(spinning)}, "");
  for (;;) {}
});
`,
  );
  return { module, go, spinning };
}
