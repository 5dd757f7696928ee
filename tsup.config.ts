import { defineConfig } from "tsup";

// One config object: tsup builds array entries concurrently and `clean` in one would wipe another's output.
export default defineConfig({
  entry: {
    index: "src/index.ts",
    collector: "src/collector.ts",
    testing: "src/testing/index.ts",
    // The child-process entry point that the supervisor forks (not a public import).
    "collector/main": "src/collector/main.ts",
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
});
