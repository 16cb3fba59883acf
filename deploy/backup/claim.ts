// The note a backup writes in the name it claims where hard links are missing, and how a restore recognises it.
import { closeSync, openSync, readSync } from "node:fs";

const prefix = "edgewise backup: not an archive.";

/**
 * What the claimed `out` holds until the checked archive is renamed over it: a process killed in between (SIGKILL,
 * a power cut) left an empty file that looked like a backup; this one says what happened and where the archive is.
 */
export const claimNote = (partial: string) =>
  `${prefix} A backup claimed this name and was stopped before its checked archive replaced it; that archive ` +
  `may be at ${partial} (it holds the data dir's secrets). Restore from it, or remove both.\n`;

/** The note, when `path` is a claim a backup left (it is small and starts with its words); undefined otherwise. */
export function readClaimNote(path: string): string | undefined {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(4096);
    const read = readSync(fd, head, 0, head.length, 0);
    const text = head.subarray(0, read).toString("utf8");
    return text.startsWith(prefix) ? text.trim() : undefined;
  } finally {
    closeSync(fd);
  }
}
