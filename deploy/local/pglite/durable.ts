// Opens PGlite so that its commits are on disk when they return (fsync), or, on request, only in the OS cache.
import { fsyncSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import { EdgewiseError } from "../../../shared/errors/index.ts";

/** `FULL`: every commit's WAL is fsynced, and checkpoints fsync the data files. `NORMAL`: neither. */
export type PGliteSync = "FULL" | "NORMAL";

export interface OpenedPGlite {
  db: PGlite;
  /** fsyncs made since it opened (0 on NORMAL): what tests check. */
  fsyncs(): number;
}

interface EmscriptenStream {
  nfd?: number;
}
interface NodeFs {
  stream_ops: { fsync?: (stream: EmscriptenStream) => number };
}

/**
 * Why this exists: PGlite 0.5 starts Postgres with `-F` (fsync off), and its WebAssembly runtime maps `fdatasync`
 * to nothing and `fsync` to the file system's `fsync` operation, which its Node file system (NODEFS) does not
 * have. So a commit only reaches the OS cache: it survives a killed process, not a power loss. On FULL, Postgres
 * runs with fsync on and `wal_sync_method = fsync`, and NODEFS gets the missing operation (`fsyncSync` on the real
 * file), so a commit returns once its WAL is on disk, as on a server with the default settings.
 *
 * The operation is added on the module's NODEFS, which PGlite does not export; `mod` is pinned by the exact
 * PGlite version in package.json, and a missing piece fails the start instead of running without durability.
 */
export async function openPGlite(dir: string, sync: PGliteSync): Promise<OpenedPGlite> {
  if (sync === "NORMAL") {
    const db = await PGlite.create(dir);
    return { db, fsyncs: () => 0 };
  }
  const startParams = [
    ...PGlite.defaultStartParams.filter((param) => param !== "-F"),
    "-c",
    "fsync=on",
    "-c",
    "wal_sync_method=fsync",
  ];
  const db = await PGlite.create(dir, { startParams });
  const nodefs = (db as unknown as { mod?: { FS?: { filesystems?: { NODEFS?: NodeFs } } } }).mod?.FS
    ?.filesystems?.NODEFS;
  if (!nodefs?.stream_ops) {
    await db.close();
    throw new EdgewiseError(
      "config.invalid",
      "this PGlite build exposes no NODEFS to add fsync to; set EDGEWISE_PGLITE_SYNC=NORMAL to run without it",
    );
  }
  let fsyncs = 0;
  nodefs.stream_ops.fsync = (stream) => {
    if (stream.nfd === undefined) return 0;
    fsyncSync(stream.nfd);
    fsyncs++;
    return 0;
  };
  // Whatever was written before the operation existed (a fresh initdb, a recovery at open) is flushed now.
  await db.exec("CHECKPOINT");
  return { db, fsyncs: () => fsyncs };
}
