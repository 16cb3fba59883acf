// What a backup archive says it holds (the Edgewise build, store facts, each entry's checksum), and the checks on it.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Why a restore gave up: the archive is not what a backup writes (truncated, corrupt, or edited). */
export class ArchiveError extends Error {}

export const manifestName = "edgewise-backup.json";
export const manifestFormat = "edgewise-backup/1";

export type ManifestEntry =
  | { path: string; type: "dir" }
  | { path: string; type: "file"; size: number; sha256: string };

export interface Manifest {
  format: typeof manifestFormat;
  edgewise: { version: string; commit: string | null };
  createdAt: string;
  /** Where it was taken from, for the operator's records. */
  source: { host: string; dataDir: string };
  /** How the node kept its Postgres: in the archive (the embedded PGlite), or elsewhere (DATABASE_URL). */
  postgres: "embedded" | "external";
  /** `actors.db` and `traces.db`: SQLite's user_version and the local host's edgewise_meta rows; PGlite's major. */
  stores: Record<string, unknown>;
  entries: ManifestEntry[];
}

const root = fileURLToPath(new URL("../..", import.meta.url));

/** package.json's version, and the git commit when the code runs from a checkout. */
export function edgewiseBuild(): Manifest["edgewise"] {
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  let commit: string | null = null;
  if (existsSync(join(root, ".git"))) {
    try {
      commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
        .toString()
        .trim();
    } catch {
      // No git on this machine: the version alone.
    }
  }
  return { version, commit };
}

/** A file's size and sha256 (hex), read whole; `sync` also flushes it to disk, as a restore wants. */
export function digestFile(path: string, sync = false): { size: number; sha256: string } {
  const hash = createHash("sha256");
  const buffer = Buffer.alloc(1 << 20);
  const fd = openSync(path, "r");
  try {
    let size = 0;
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      hash.update(buffer.subarray(0, read));
      size += read;
    }
    if (sync) fsyncSync(fd);
    return { size, sha256: hash.digest("hex") };
  } finally {
    closeSync(fd);
  }
}

/**
 * A path an archive may hold: relative, `/`-separated, with no `..`, `.` or empty segment, so nothing it names
 * lands outside the directory it is restored into.
 */
export function safePath(path: string): boolean {
  if (path === "" || path.startsWith("/") || path.includes("\\") || path.includes("\0")) return false;
  return path.split("/").every((part) => part !== "" && part !== "." && part !== "..");
}

/** Parses and checks the manifest's shape; anything else is a corrupt or edited archive. */
export function parseManifest(bytes: Buffer): Manifest {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(bytes.toString("utf8")) as Manifest;
  } catch {
    throw new ArchiveError("its manifest is not valid JSON");
  }
  if (manifest?.format !== manifestFormat) {
    throw new ArchiveError(
      `its manifest's format is ${JSON.stringify(manifest?.format)}, not ${manifestFormat}`,
    );
  }
  if (!Array.isArray(manifest.entries)) throw new ArchiveError("its manifest lists no entries");
  for (const entry of manifest.entries) {
    const fileOk =
      entry?.type === "file" &&
      Number.isSafeInteger(entry.size) &&
      entry.size >= 0 &&
      typeof entry.sha256 === "string" &&
      /^[0-9a-f]{64}$/.test(entry.sha256);
    if (!(typeof entry?.path === "string" && safePath(entry.path) && (fileOk || entry.type === "dir"))) {
      throw new ArchiveError(`its manifest has a malformed entry (${JSON.stringify(entry?.path)})`);
    }
  }
  return manifest;
}
