// Small waits on child processes for the driver: the next IPC message matching a predicate, or exit, each bounded
// by a timeout that says what was awaited (a stuck run fails loudly instead of hanging the bench).
import type { ChildProcess } from "node:child_process";

export type Message = { event?: string; [key: string]: unknown };

export function nextMessage(child: ChildProcess, match: (m: Message) => boolean, timeoutMs: number, what: string): Promise<Message> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Message): void => {
      if (!match(m)) return;
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${what}: the process exited (code ${code}, signal ${signal}) first`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: nothing within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** Ask an IPC child something and wait for its answer event. */
export async function call(child: ChildProcess, msg: object, answer: string, timeoutMs = 60_000): Promise<Message> {
  const reply = nextMessage(child, (m) => m.event === answer, timeoutMs, `waiting for "${answer}"`);
  child.send(msg);
  return reply;
}

export function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
