import { build, defineConfig, type Options } from "tsup";

// The child-process entry point that the supervisor forks (not a public import), as one CommonJS file. Node loads
// it with its CommonJS loader, which costs a collector less at start than the ES module loader with the shared
// chunks: a command collector 130 to 140 ms of CPU to READY against 160 to 170 ms, and 2.6 MB less resident when
// idle (see the README's performance section). Each kind's runtime still loads (and requires its Node modules) only
// when that kind runs.
const collectorMain = (outDir: string): Options => ({
  entry: { "collector/main": "src/collector/main.ts" },
  format: ["cjs"],
  outExtension: () => ({ js: ".cjs" }),
  outDir,
  target: "node20",
  platform: "node",
  sourcemap: true,
  splitting: false,
  clean: false,
  dts: false,
  keepNames: true,
  silent: true,
  // Not this file again: the options above are the whole build.
  config: false,
});

// One config object: tsup builds array entries concurrently and `clean` in one would wipe another's output. The
// collector's CommonJS file is built once this one is done (and has cleaned the directory), into the same one.
export default defineConfig((cli) => ({
  entry: {
    index: "src/index.ts",
    collector: "src/collector.ts",
    testing: "src/testing/index.ts",
  },
  format: ["esm"],
  dts: { entry: { index: "src/index.ts", collector: "src/collector.ts", testing: "src/testing/index.ts" } },
  target: "node20",
  platform: "node",
  sourcemap: true,
  clean: true,
  splitting: true,
  // esbuild renames a class that refers to itself (`class _AggregatorError`); error names are part of what users see.
  keepNames: true,
  onSuccess: async () => {
    await build(collectorMain(cli.outDir ?? "dist"));
  },
}));
