// CommandSource: a long-lived command whose stdout and stderr lines become records, run by a supervised collector.
import { InvalidOptionError } from "../errors.js";
import { checkKeys, optionKeys } from "../util/validate.js";
import { checkObject } from "../options.js";
import { describe } from "../pipeline/serialize.js";
import { normalizeLevel, type LogLevel } from "../record.js";
import { COLLECTOR_KEYS, CollectorSource, type CollectorSourceOptions, type RestartOnExit, resolveCollectorOptions, resolveRestartOnExit } from "./collector-source.js";
import type { BaseSpec, CommandSpec } from "./specs.js";

export interface CommandSourceOptions extends CollectorSourceOptions {
  /** The program to run. Without `shell`, it is executed directly (no shell parsing, no injection). */
  command: string;
  /** Arguments, passed as they are. @default [] */
  args?: string[];
  /** Run through a shell (`true` = /bin/sh, or a shell path). Only when you need pipes or globs. @default false */
  shell?: boolean | string;
  /** Working directory of the command. @default the host's cwd */
  cwd?: string;
  /** Extra environment variables for the command. */
  env?: Record<string, string>;
  /** Start from the host's environment (then apply `env`). @default true */
  inheritEnv?: boolean;
  /** Level of stderr lines that carry none. @default "warn" */
  stderrLevel?: LogLevel;
  /**
   * When the command exits by itself: `"always"` runs it again (after the `restart` backoff, within its breaker),
   * `"on-failure"` only when it exited with a code other than 0 or was killed by a signal, `"never"` not at all. A
   * command that is not run again ends the source: its `source:exit` is its last event (an exit with code 0 is no
   * `source:error`), and its state is `stopped`. A collector process that crashes is restarted in any case.
   * @default "always"
   */
  restartOnExit?: RestartOnExit;
}

const KEYS = optionKeys<CommandSourceOptions>()([
  ...COLLECTOR_KEYS,
  "command", "args", "shell", "cwd", "env", "inheritEnv", "stderrLevel", "restartOnExit",
]);

export class CommandSource extends CollectorSource {
  readonly kind = "command";
  private readonly command: Omit<CommandSpec, keyof BaseSpec | "kind">;

  constructor(options: CommandSourceOptions) {
    super(resolveCollectorOptions(options));
    checkKeys("", options, KEYS);
    if (typeof options.command !== "string" || options.command.length === 0) {
      throw new InvalidOptionError(`Expected \`command\` to be a non-empty string, got ${describe(options.command)}`);
    }
    if (options.args !== undefined && (!Array.isArray(options.args) || options.args.some((a) => typeof a !== "string"))) {
      throw new InvalidOptionError(`Expected \`args\` to be an array of strings, got ${describe(options.args)}`);
    }
    if (options.shell !== undefined && typeof options.shell !== "boolean" && !(typeof options.shell === "string" && options.shell.length > 0)) {
      throw new InvalidOptionError(`Expected \`shell\` to be a boolean or a shell path, got ${describe(options.shell)}`);
    }
    if (options.cwd !== undefined && (typeof options.cwd !== "string" || options.cwd.length === 0)) {
      throw new InvalidOptionError(`Expected \`cwd\` to be a directory path, got ${describe(options.cwd)}`);
    }
    if (options.inheritEnv !== undefined && typeof options.inheritEnv !== "boolean") {
      throw new InvalidOptionError(`Expected \`inheritEnv\` to be a boolean, got ${describe(options.inheritEnv)}`);
    }
    checkObject("env", options.env);
    // What spawn() would refuse at start (as a collector crash) or turn into text (`5`, `"null"`, "[object Object]").
    for (const [key, value] of Object.entries(options.env ?? {})) {
      if (typeof value !== "string" && value !== undefined) {
        throw new InvalidOptionError(`Expected \`env.${key}\` to be a string, got ${describe(value)}`);
      }
      if (key.includes("\0") || key.includes("=") || value?.includes("\0")) {
        throw new InvalidOptionError(`Expected \`env.${key.replace(/\0/g, "\\0")}\` to hold no NUL byte and its name no "="`);
      }
    }
    for (const [i, a] of (options.args ?? []).entries()) {
      if (a.includes("\0")) throw new InvalidOptionError(`Expected \`args[${i}]\` to hold no NUL byte`);
    }
    if (options.command.includes("\0")) throw new InvalidOptionError("Expected `command` to hold no NUL byte");
    if (options.stderrLevel !== undefined && normalizeLevel(options.stderrLevel) !== options.stderrLevel) {
      throw new InvalidOptionError(`Expected \`stderrLevel\` to be one of trace, debug, info, warn, error, fatal, got ${describe(options.stderrLevel)}`);
    }
    this.restartOnExit = resolveRestartOnExit(options.restartOnExit);
    this.command = {
      command: options.command,
      args: options.args ?? [],
      shell: options.shell ?? false,
      cwd: options.cwd,
      env: options.env,
      inheritEnv: options.inheritEnv ?? true,
      stderrLevel: options.stderrLevel,
    };
  }

  protected spec(base: BaseSpec): CommandSpec {
    return { ...base, kind: "command", ...this.command };
  }
}
