// Entry point of `npm run bench`: registers tsx (resolved from this package, whatever the cwd) and runs run.ts.
import { register } from "tsx/esm/api";

register();
await import("./run.ts");
