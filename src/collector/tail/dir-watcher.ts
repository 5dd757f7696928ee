// fs.watch on the directories of followed files, used only as a hint to poll sooner: inotify can drop events,
// miss network file systems and run out of watches, so the tailer's stat polling stays the source of truth.
import { watch, type FSWatcher } from "node:fs";
import { join } from "node:path";

const MAX_WATCHED_DIRECTORIES = 64;

export class DirWatcher {
  readonly #watchers = new Map<string, FSWatcher>();
  /** Directories that refused a watch; not retried while they stay wanted (polling covers them). */
  readonly #failed = new Set<string>();
  readonly #onChange: (eventType: string, path: string | undefined) => void;

  /**
   * `onChange` gets "change" (a file's content) or "rename" (an entry appeared, vanished or was renamed), and the
   * entry's path when the platform names it.
   */
  constructor(onChange: (eventType: string, path: string | undefined) => void) {
    this.#onChange = onChange;
  }

  /** Watches exactly `dirs` (up to a cap), closing watchers of directories no longer needed. */
  sync(dirs: Iterable<string>): void {
    const wanted = new Set(dirs);
    for (const [dir, watcher] of this.#watchers) {
      if (!wanted.has(dir)) {
        watcher.close();
        this.#watchers.delete(dir);
      }
    }
    // Forget refusals of directories no longer followed (dated log directories come and go): bounded by `dirs`.
    for (const dir of this.#failed) if (!wanted.has(dir)) this.#failed.delete(dir);
    for (const dir of wanted) {
      if (this.#watchers.size >= MAX_WATCHED_DIRECTORIES) break;
      if (this.#watchers.has(dir) || this.#failed.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, (eventType, filename) =>
          this.#onChange(eventType, typeof filename === "string" && filename.length > 0 ? join(dir, filename) : undefined),
        );
        watcher.on("error", () => {
          watcher.close();
          this.#watchers.delete(dir);
          this.#failed.add(dir);
        });
        this.#watchers.set(dir, watcher);
      } catch {
        this.#failed.add(dir);
      }
    }
  }

  close(): void {
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }
}
