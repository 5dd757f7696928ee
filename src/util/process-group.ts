// Signalling a whole process group: the host kills its collectors' groups, a collector its command's.

/** Send `signal` to the process group `pid` leads; false when there is none (any more). */
export function signalGroup(pid: number | undefined, signal: NodeJS.Signals): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}
