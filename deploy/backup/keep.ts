// Both backups' last step: an archive written under a temporary name beside its own, checked whole, then renamed.
import { randomBytes } from "node:crypto";
import { mkdtempSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { extractArchive, syncDir } from "./archive.ts";
import type { Manifest } from "./manifest.ts";
import { verify } from "./restore.ts";

/** Where a backup writes `out` (an absolute path) until it is checked: beside it, so the last step is a rename. */
export function partialPath(out: string): string {
  return join(dirname(out), `.${basename(out)}.partial-${randomBytes(4).toString("hex")}`);
}

/**
 * Extracts the archive written, fsynced and closed at `partial` into a private directory beside `out`, checks every
 * entry against its manifest as a restore does (`verify`: nothing missing, nothing extra, each file's size and
 * sha256), and only then renames it to `out` and fsyncs the directory. Throws what the check found (an
 * ArchiveError) and keeps nothing: `partial` and the directory are removed.
 */
export function keepChecked(partial: string, out: string): Manifest {
  const checking = mkdtempSync(join(dirname(out), `.${basename(out)}.check-`));
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
    renameSync(partial, out);
    syncDir(dirname(out));
    return manifest;
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  } finally {
    rmSync(checking, { recursive: true, force: true });
  }
}
