// `npm run backup -- --online --url <node>`: fetches a running node's archive, checks it whole, then moves it into place.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { extractArchive } from "./archive.ts";
import { syncDir } from "./backup.ts";
import type { Manifest } from "./manifest.ts";
import { ArchiveError } from "./manifest.ts";
import { verify } from "./restore.ts";

export interface OnlineBackupRequest {
  /** The node's base URL. */
  url: string;
  /** An admin token (EDGEWISE_TOKEN). */
  token: string;
  /** The archive to write; refused if it exists. */
  out: string;
}

/**
 * Writes the node's answer to a 0600 temporary file beside `out`, extracts it into a private directory there and
 * checks every entry against its manifest as a restore does, and only then renames it to `out`. A refusal, a cut
 * stream or a corrupt archive leaves nothing behind.
 */
export async function onlineBackup(request: OnlineBackupRequest): Promise<Manifest> {
  const out = resolve(request.out);
  if (existsSync(out)) throw new EdgewiseError("conflict", `${out} exists; backups are never overwritten`);
  const tag = randomBytes(4).toString("hex");
  const partial = join(dirname(out), `.${basename(out)}.partial-${tag}`);
  let checking: string | undefined;
  try {
    // Relative to the URL's path, so a node behind a proxy under a prefix (`https://host/edgewise`) is reached there.
    const response = await fetch(backupUrl(request.url), {
      method: "POST",
      headers: { authorization: `Bearer ${request.token}` },
    });
    if (!response.ok || !response.body) throw new EdgewiseError("conflict", await refusal(response));
    const fd = openSync(partial, "wx", 0o600);
    try {
      const reader = response.body.getReader();
      for (let read = await reader.read(); !read.done; read = await reader.read()) writeSync(fd, read.value);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    checking = mkdtempSync(join(dirname(out), `.${basename(out)}.check-`));
    extractArchive(partial, checking);
    const manifest = verify(checking);
    renameSync(partial, out);
    syncDir(dirname(out));
    return manifest;
  } catch (error) {
    rmSync(partial, { force: true });
    if (error instanceof ArchiveError)
      throw new EdgewiseError(
        "conflict",
        `the archive the node sent is incomplete or corrupt: ${error.message}`,
      );
    throw error;
  } finally {
    if (checking) rmSync(checking, { recursive: true, force: true });
  }
}

/** The node's problem+json, as one line: its status, detail and Retry-After. */
async function refusal(response: Response): Promise<string> {
  let detail = response.statusText;
  try {
    const problem = (await response.json()) as { detail?: string; title?: string };
    detail = problem.detail ?? problem.title ?? detail;
  } catch {
    // Not problem+json (a proxy's page): the status alone.
  }
  const retry = response.headers.get("retry-after");
  return `the node answered ${response.status}: ${detail}${retry ? ` (retry after ${retry} s)` : ""}`;
}

/** `<url>/v1/backup`, keeping any path the node's URL has (a trailing slash or not). */
export function backupUrl(url: string): URL {
  const base = new URL(url);
  base.pathname = `${base.pathname.replace(/\/+$/, "")}/v1/backup`;
  base.search = "";
  base.hash = "";
  return base;
}
