// Both backups' last step: an archive written under a temporary name beside its own, checked whole, then put in place.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  linkSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { extractArchive, syncDir } from "./archive.ts";
import { claimNote } from "./claim.ts";
import type { Manifest } from "./manifest.ts";
import { verify } from "./restore.ts";

/** Where a backup writes `out` (an absolute path) until it is checked: beside it, so the last step is a link. */
export function partialPath(out: string): string {
  return join(dirname(out), `.${basename(out)}.partial-${randomBytes(4).toString("hex")}`);
}

/**
 * Extracts the archive written, fsynced and closed at `partial` into a private directory beside `out`, checks every
 * entry against its manifest as a restore does (`verify`: nothing missing, nothing extra, each file's size and
 * sha256), and only then gives it the name `out` (never over a file there: `placeNew`) and fsyncs the directory.
 * Throws what the check found (an ArchiveError) and keeps nothing: `partial` and the directory are removed. Only
 * when `out` appeared while it was written is the checked archive kept, at `partial`, and the error says so.
 */
export function keepChecked(partial: string, out: string): Manifest {
  const checking = mkdtempSync(join(dirname(out), `.${basename(out)}.check-`));
  let appeared = false;
  try {
    try {
      extractArchive(partial, checking);
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (code !== "ENOSPC" && code !== "EDQUOT") throw error;
      throw new EdgewiseError(
        "unavailable",
        `no room in ${dirname(out)} to check the archive: it is extracted there whole to be checked, so that directory needs about the data dir's size free besides the archive; nothing was kept`,
      );
    }
    const manifest = verify(checking);
    if (!placeNew(partial, out)) {
      appeared = true;
      throw new EdgewiseError(
        "conflict",
        `${out} appeared while the backup was written; backups are never overwritten: the checked archive is kept at ${partial} (mode 0600, it holds the data dir's secrets): rename it, or remove it`,
      );
    }
    syncDir(dirname(out));
    return manifest;
  } catch (error) {
    if (!appeared) rmSync(partial, { force: true });
    throw error;
  } finally {
    rmSync(checking, { recursive: true, force: true });
  }
}

/** What link(2) answers on a file system without hard links (FAT, some network and FUSE mounts). */
const noHardLinks = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

/**
 * Gives `partial` the name `out` unless a file has it, as one step: `out` is checked when the backup starts, but a
 * file made there meanwhile (another backup to the same path, an operator) would be replaced by a rename. A hard
 * link fails with EEXIST instead. Where the file system has none, `out` is first created with O_EXCL, which claims
 * the name as one step too, and then replaced by the archive (a rename): a process killed in between leaves the
 * claim, which holds a note naming `partial` (`claimNote`; a restore of it says so), not an empty file. False, and
 * `partial` left as it is, when `out` exists.
 */
export function placeNew(
  partial: string,
  out: string,
  link: typeof linkSync = linkSync,
  rename: typeof renameSync = renameSync,
  write: (fd: number, text: string) => unknown = writeSync,
): boolean {
  try {
    link(partial, out);
  } catch (error) {
    const code = String((error as { code?: unknown } | null)?.code);
    if (code === "EEXIST") return false;
    if (!noHardLinks.has(code)) throw error;
    return claimThenRename(partial, out, rename, write);
  }
  unlinkSync(partial);
  return true;
}

/** `placeNew` without hard links: false when `out` exists, else `partial` renamed over the claim made there. */
function claimThenRename(
  partial: string,
  out: string,
  rename: typeof renameSync,
  write: (fd: number, text: string) => unknown,
): boolean {
  let fd: number;
  try {
    fd = openSync(out, "wx", 0o600);
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === "EEXIST") return false;
    throw error;
  }
  try {
    try {
      write(fd, claimNote(partial));
    } finally {
      closeSync(fd);
    }
    rename(partial, out);
  } catch (error) {
    // The claim is ours and names an archive the caller removes: it would be left behind with nothing behind it,
    // empty when the note itself could not be written (a full disk, just after the archive filled it).
    rmSync(out, { force: true });
    throw error;
  }
  return true;
}
