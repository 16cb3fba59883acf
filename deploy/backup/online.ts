// Online backup: a running node's data dir copied at one quiet instant, streamed as the archive `npm run backup` writes.
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { SqlDatabase } from "../../actors/hosts/local/sql.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { EmbeddedPostgres } from "../local/pglite/index.ts";
import { writeArchive } from "./archive.ts";
import { skipped, sqliteFiles, stagingDir, storeFacts, walk } from "./backup.ts";
import { edgewiseBuild, type Manifest, manifestFormat, manifestName } from "./manifest.ts";

export interface OnlineBackupParts {
  dataDir: string;
  /** The node's embedded PGlite; undefined on DATABASE_URL, which an online backup does not cover. */
  embedded: EmbeddedPostgres | undefined;
  /** Opens a SQLite file of the data dir (a connection of its own, beside the node's). */
  openDb: (path: string) => SqlDatabase;
  /** How long the node may take to reach a quiet instant before the backup fails with 503. */
  quiesceMs: number;
}

export interface OnlineArchive {
  manifest: Manifest;
  /** How long the node took to reach its quiet instant, and how long the copy held it there (nothing ran). */
  quietAfterMs: number;
  pausedMs: number;
  /** The archive's length in bytes. */
  size: number;
  /** The gzipped tar; its copy of the data dir is removed once it has been read to the end or cancelled. */
  body: ReadableStream<Uint8Array>;
}

/** A SQLite file's journal beside it: the copy made with VACUUM INTO is whole without them. */
const sqliteJournal = new RegExp(
  `^(${sqliteFiles.map((name) => name.replace(".", "\\.")).join("|")})-(wal|shm|journal)$`,
);

/**
 * Why this is as consistent as an offline backup: both stores are copied at one instant, inside PGlite's query lock
 * with no transaction open (atQuietInstant) and in one synchronous step, so no actor turn, relay pass, delivery
 * outcome, billing transaction or timer of this process commits to either store between the two copies. What was
 * under way then (a delivery claimed but not answered, an outbox row sent but not marked) is in the copy as a node
 * killed at that instant leaves it, which a restored node settles exactly once, as after `npm run backup` of a
 * node that died (backup.test.ts).
 *
 * The copy and the archive are staged in the data dir's own `.online-backup/` (0700), not under $TMPDIR: they hold
 * the node's secrets, which then stay on the data dir's file system, with its owner and modes, rather than in a
 * directory other users share (often another file system, or memory); the data dir's parent may not be the node's
 * to write. Both backups skip that name (`skipped`), so it is never archived. One backup at a time in the one
 * process on the dir (`busy`, and the data dir's lock): whatever is there at the start of a backup, or of a node
 * (clearStaging), an interrupted one left.
 */
export async function takeOnlineBackup(
  parts: OnlineBackupParts,
  busy: { now: boolean },
): Promise<OnlineArchive> {
  const quietInstant = parts.embedded?.atQuietInstant?.bind(parts.embedded);
  if (!quietInstant) {
    throw new EdgewiseError(
      "conflict",
      "online backup covers a node on the embedded Postgres only; this node keeps its Postgres at DATABASE_URL: stop it and back up offline (deploy/README.md, Backup and restore)",
    );
  }
  if (busy.now) throw new EdgewiseError("conflict", "a backup of this node is already under way");
  busy.now = true;
  let staging = "";
  const cleanUp = () => {
    busy.now = false;
    if (staging) rmSync(staging, { recursive: true, force: true });
  };
  try {
    staging = join(parts.dataDir, stagingDir);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { mode: 0o700 });
    const copy = join(staging, "data");
    mkdirSync(copy);
    const asked = performance.now();
    const { createdAt, quietAfterMs, pausedMs } = await quietInstant(parts.quiesceMs, () => {
      const quiet = performance.now();
      copyDataDir(parts.dataDir, copy, parts.openDb);
      return {
        createdAt: new Date().toISOString(),
        quietAfterMs: Math.round(quiet - asked),
        pausedMs: Math.round(performance.now() - quiet),
      };
    });
    const manifest: Manifest = {
      format: manifestFormat,
      edgewise: edgewiseBuild(),
      createdAt,
      source: { host: hostname(), dataDir: parts.dataDir },
      postgres: "embedded",
      stores: storeFacts(copy, parts.openDb),
      entries: walk(copy),
    };
    // Whole before the answer starts: a failure to pack is answered as an error, not as a cut stream.
    const archive = join(staging, "archive.tar.gz");
    const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    const paths = manifest.entries.map((entry) => entry.path);
    await writeArchive(copy, paths, { name: manifestName, body }, archive);
    return {
      manifest,
      quietAfterMs,
      pausedMs,
      size: statSync(archive).size,
      body: fileBody(archive, cleanUp),
    };
  } catch (error) {
    cleanUp();
    throw error;
  }
}

/**
 * Removes the staging dir an online backup of a killed node left in `dataDir` (a partial copy of its files and
 * secrets); true if there was one. Only for a process that holds the data dir's locks: no backup runs there then.
 */
export function clearStaging(dataDir: string): boolean {
  const path = join(dataDir, stagingDir);
  if (!existsSync(path)) return false;
  rmSync(path, { recursive: true, force: true });
  return true;
}

/** Everything a stopped node's backup holds: each SQLite file by VACUUM INTO (whole, no journal), the rest copied. */
function copyDataDir(dataDir: string, into: string, openDb: (path: string) => SqlDatabase): void {
  for (const name of readdirSync(dataDir)) {
    if (skipped.test(name) || sqliteJournal.test(name) || name === manifestName) continue;
    const from = join(dataDir, name);
    const to = join(into, name);
    if (!sqliteFiles.includes(name)) {
      cpSync(from, to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      continue;
    }
    const db = openDb(from);
    try {
      db.exec(`VACUUM INTO '${to.replaceAll("'", "''")}'`);
    } finally {
      db.close();
    }
    // VACUUM INTO creates the file under the umask (0644): the archive keeps each entry's mode, which a plain tar -x
    // restores, so the copy is made as private as the node's own (data-dir-files.ts).
    chmodSync(to, 0o600);
  }
}

/**
 * The archive file as a web stream, read a MiB at a time as the client takes it; `done` runs once, however it ends.
 * Each chunk is a fresh buffer the stream owns.
 *
 * Why not node-tar's Pack streamed straight into the answer (6c02940, paused when the queue was full, resumed in
 * `pull`): a web stream calls `pull` synchronously from `enqueue` when it wants more, so `pack.resume()` ran inside
 * Pack's own 'data' event, that is inside minizlib's Gzip.write while it was still emitting one deflate output in
 * 16 KiB parts. The resume reached the entry being packed (zip 'drain', then Pack's drain handler resumes it), whose
 * buffered next chunk went into the same Gzip.write re-entrantly, and its output was emitted between the parts of
 * the first: the gzip's bytes reordered, so it does not inflate ("invalid distance code", "invalid code lengths
 * set", "incorrect data check"). It needs an entry with a chunk buffered at that moment: 3 of 34 mid-saga runs of
 * online.test.ts on 6c02940. The bytes sent and received were identical, so neither Bun's HTTP nor fetch was at
 * fault, and Node 20 does the same without HTTP. Packing to a file is safe (the pipe resumes Pack from the file's
 * asynchronous 'drain', never inside a write); a Pack streamed again must be resumed outside its 'data' event
 * (queueMicrotask).
 */
function fileBody(path: string, done: () => void): ReadableStream<Uint8Array> {
  const fd = openSync(path, "r");
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    closeSync(fd);
    done();
  };
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      try {
        const chunk = new Uint8Array(1 << 20);
        const read = readSync(fd, chunk);
        if (read === 0) {
          finish();
          controller.close();
          return;
        }
        controller.enqueue(read === chunk.length ? chunk : chunk.slice(0, read));
      } catch (error) {
        finish();
        controller.error(error);
      }
    },
    cancel() {
      finish();
    },
  });
}
