// `npm run backup -- --online --url <node>`: fetches a running node's archive, checks it whole, then moves it into place.
import { closeSync, existsSync, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { keepChecked, partialPath } from "./keep.ts";
import type { Manifest } from "./manifest.ts";
import { ArchiveError } from "./manifest.ts";

export interface OnlineBackupRequest {
  /** The node's base URL. */
  url: string;
  /** An admin token (EDGEWISE_TOKEN). */
  token: string;
  /** The archive to write; refused if it exists. */
  out: string;
  /**
   * The longest the node may send nothing: before its answer starts (it packs the whole archive first) and between
   * two parts of it. Past it the request is aborted and nothing is written.
   */
  timeoutMs: number;
}

/** `--timeout`'s default: a stalled node fails a cron job in minutes; a large data dir's packing fits well within. */
export const defaultTimeoutMs = 10 * 60_000;

/**
 * Writes the node's answer to a 0600 temporary file beside `out`, then checks it whole and gives it the name `out`
 * as the offline backup does (`keepChecked`). A refusal, a cut
 * stream, a node silent for `timeoutMs` or a corrupt archive leaves nothing behind.
 */
export async function onlineBackup(request: OnlineBackupRequest): Promise<Manifest> {
  const out = resolve(request.out);
  if (existsSync(out)) throw new EdgewiseError("conflict", `${out} exists; backups are never overwritten`);
  const partial = partialPath(out);
  const silence = silenceBound(request.timeoutMs);
  let checking = false;
  try {
    // Relative to the URL's path, so a node behind a proxy under a prefix (`https://host/edgewise`) is reached there.
    const response = await silence.guard(
      fetch(backupUrl(request.url), {
        method: "POST",
        headers: { authorization: `Bearer ${request.token}` },
        signal: silence.signal,
        // Bun's own idle timer (BUN_CONFIG_HTTP_IDLE_TIMEOUT) off: --timeout is the one bound, whatever the environment.
        timeout: false,
      }),
    );
    silence.heard();
    if (!response.ok || !response.body)
      throw new EdgewiseError("conflict", await silence.guard(refusal(response)));
    const fd = openSync(partial, "wx", 0o600);
    try {
      const reader = response.body.getReader();
      for (
        let read = await silence.guard(reader.read());
        !read.done;
        read = await silence.guard(reader.read())
      ) {
        silence.heard();
        writeSync(fd, read.value);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    silence.end();
    checking = true;
    return keepChecked(partial, out);
  } catch (error) {
    silence.end();
    // From here on keepChecked removes `partial` itself, but for a checked archive it keeps (`out` appeared).
    if (!checking) rmSync(partial, { force: true });
    if (silence.expired)
      throw new EdgewiseError(
        "unavailable",
        `the node sent nothing for ${request.timeoutMs} ms (--timeout); the request was aborted and nothing was written`,
      );
    if (error instanceof ArchiveError)
      throw new EdgewiseError(
        "conflict",
        `the archive the node sent is incomplete or corrupt: ${error.message}`,
      );
    throw error;
  }
}

/**
 * Aborts the request once nothing has come for `ms`: `heard` restarts the count at each part of the answer. `guard`
 * also rejects a pending step at that moment, so the bound holds even where a runtime leaves a read hanging after
 * its request is aborted.
 */
function silenceBound(ms: number) {
  const controller = new AbortController();
  let expire = () => {};
  const expiredAt = new Promise<never>((_, reject) => {
    expire = () => reject(new Error("silent past the bound"));
  });
  expiredAt.catch(() => undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = {
    expired: false,
    signal: controller.signal,
    heard() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        bound.expired = true;
        controller.abort(new Error(`nothing from the node for ${ms} ms`));
        expire();
      }, ms);
    },
    guard<T>(step: Promise<T>): Promise<T> {
      return Promise.race([step, expiredAt]);
    },
    end() {
      clearTimeout(timer);
    },
  };
  bound.heard();
  return bound;
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
