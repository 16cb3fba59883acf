// `npm run backup`: an offline, consistent copy of a stopped node's data dir, as one gzipped tar with a manifest.
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import type { SqlDatabase } from "../../actors/hosts/local/sql.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { type ActorHostLease, acquireActorHostLease } from "../actor-host-lease.ts";
import { type DataDirLock, lockDataDir, openElsewhere } from "../data-dir-lock.ts";
import { writeArchive } from "./archive.ts";
import { keepChecked, partialPath } from "./keep.ts";
import {
  ArchiveError,
  digestFile,
  edgewiseBuild,
  type Manifest,
  type ManifestEntry,
  manifestFormat,
  manifestName,
} from "./manifest.ts";

export interface BackupOptions {
  dataDir: string;
  /** The archive to write; refused if it exists. */
  out: string;
  openDb: (path: string) => SqlDatabase;
  /**
   * The node's DATABASE_URL, when it keeps its Postgres elsewhere: the archive then holds the data dir alone, and
   * the operator dumps that schema (deploy/README.md). Used to check that no actor host runs on it. Whether the node
   * kept its Postgres elsewhere is told by the data dir (`postgresOf`), not by this being set.
   */
  databaseUrl?: string | undefined;
  /**
   * Tests only (the CLI never sets it): runs on the written archive, under its temporary name, before it is checked,
   * to damage it as a write that went wrong unnoticed would (a full disk, a bug in the tar or gzip stream).
   */
  beforeCheck?: ((archive: string) => void) | undefined;
}

/** Where a running node stages an online backup's copy and archive, in its data dir (online.ts): never data. */
export const stagingDir = ".online-backup";

/**
 * Files that belong to a running process, not to the data: the locks (remade at start), the readiness probe, and
 * an online backup's staging dir (one a killed node left is removed at its next start).
 */
export const skipped = /^(actors|pglite)\.lock(\.pid|-journal)?$|^\.readyz-probe$|^\.online-backup$/;

/** SQLite files a node keeps open in WAL mode while it runs. */
export const sqliteFiles = ["actors.db", "traces.db"];

/**
 * Why offline: the actors' SQLite and the Postgres side (PGlite here, or a server) are separate stores. Copied at
 * different instants, a restore can pair an actor's outbox with a broker that already recorded its delivery, or
 * the reverse, and lose or re-apply messages. With every process off the dir, all of them are at one instant.
 * The data dir's locks refuse while a node or `npm run broker` runs on it; a gateway of a split deployment holds
 * none, so a SQLite file still open elsewhere is refused too (sqliteInUse).
 */
export async function backup(options: BackupOptions): Promise<Manifest> {
  const dataDir = resolve(options.dataDir);
  const out = resolve(options.out);
  if (!existsSync(dataDir) || !lstatSync(dataDir).isDirectory()) {
    throw new EdgewiseError("config.invalid", `data dir ${dataDir} does not exist`);
  }
  if (existsSync(out)) throw new EdgewiseError("conflict", `${out} exists; backups are never overwritten`);
  if (out.startsWith(`${dataDir}/`)) {
    throw new EdgewiseError("config.invalid", "the backup must be written outside the data dir it copies");
  }
  const postgres = postgresOf(dataDir, options.databaseUrl);
  const locks: DataDirLock[] = [];
  let lease: ActorHostLease | undefined;
  const partial = partialPath(out);
  let checking = false;
  try {
    for (const part of ["pglite", "actors"] as const)
      locks.push(lockDataDir(dataDir, part, options.openDb, "Stop it, then back up"));
    for (const name of sqliteFiles) sqliteInUse(dataDir, name, options.openDb);
    // An actor host's data dir on a shared database: its lease proves no actor host writes there meanwhile.
    if (postgres === "external" && options.databaseUrl && existsSync(join(dataDir, "actors.db"))) {
      lease = await acquireActorHostLease({
        url: options.databaseUrl,
        holder: `npm run backup pid ${process.pid}`,
        onLost: () => {},
        remedy: "Stop it, then back up",
      });
    }
    const manifest: Manifest = {
      format: manifestFormat,
      edgewise: edgewiseBuild(),
      createdAt: new Date().toISOString(),
      source: { host: hostname(), dataDir },
      postgres,
      stores: storeFacts(dataDir, options.openDb),
      // Checksums first: the locks (and refusals) above keep every writer off the data dir until the archive is
      // written, so the files node-tar reads next are these. The archive is checked against them before it is kept.
      entries: walk(dataDir),
    };
    // Last, so a listing ends with it; restore trusts nothing it extracted until it has read and checked it.
    const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    const paths = manifest.entries.map((entry) => entry.path);
    await writeArchive(dataDir, paths, { name: manifestName, body }, partial);
    options.beforeCheck?.(partial);
    // Read back whole before it is kept, as the online command and restore read theirs: a write that went wrong
    // unnoticed (a full disk, a bug in the tar or gzip stream) is found now, not when the archive is needed.
    checking = true;
    return keepChecked(partial, out);
  } catch (error) {
    // From here on keepChecked removes `partial` itself, but for a checked archive it keeps (`out` appeared).
    if (!checking) rmSync(partial, { force: true });
    if (error instanceof ArchiveError)
      throw new EdgewiseError(
        "internal",
        `the archive just written failed the check a restore makes: ${error.message}. A full or failing disk, a fault in writing it, or a file of the data dir changed while it was copied; it was removed and nothing was kept: back up again`,
      );
    throw error;
  } finally {
    await lease?.release();
    for (const lock of locks.reverse()) lock.release();
  }
}

/**
 * How the node kept its Postgres, told by its data dir, not by this process's environment (a DATABASE_URL left in
 * the operator's shell would label an embedded node's archive external, and restore would then ask for a dump that
 * does not exist). A node on embedded Postgres makes `pglite/` at its first start, and one on DATABASE_URL never
 * does: `pglite/` is embedded; no `pglite/` but the node's own stores (actors.db, traces.db) is external, with or
 * without DATABASE_URL. Refused when the dir says embedded and DATABASE_URL is set: either the variable is stray or
 * `pglite/` is left from an earlier life of the dir, and nothing in the dir tells which. A dir with neither (no node
 * ever ran in it) is labelled as before: external with DATABASE_URL, else embedded.
 */
export function postgresOf(dataDir: string, databaseUrl: string | undefined): Manifest["postgres"] {
  const embedded = existsSync(join(dataDir, "pglite"));
  if (embedded && databaseUrl) {
    throw new EdgewiseError(
      "config.invalid",
      `data dir ${dataDir} holds an embedded Postgres (pglite/), but DATABASE_URL is set: if the node ran on its embedded Postgres, unset DATABASE_URL and back up again; if it ran on DATABASE_URL, its pglite/ is left from before: move it out of the data dir, then back up`,
    );
  }
  if (embedded) return "embedded";
  if (databaseUrl || sqliteFiles.some((name) => existsSync(join(dataDir, name)))) return "external";
  return "embedded";
}

/** Refuses a SQLite file another process has open (a gateway of a split deployment takes no lock). */
function sqliteInUse(dataDir: string, name: string, openDb: (path: string) => SqlDatabase): void {
  if (!openElsewhere(join(dataDir, name), openDb)) return;
  throw new EdgewiseError(
    "config.invalid",
    `data dir ${dataDir} is in use: another process has ${name} open (a gateway of a split deployment takes no lock). Stop it, then back up`,
  );
}

/** What restore and an operator want to know about the stores' schemas. */
export function storeFacts(dataDir: string, openDb: (path: string) => SqlDatabase): Record<string, unknown> {
  const facts: Record<string, unknown> = {};
  for (const name of sqliteFiles) {
    const path = join(dataDir, name);
    if (!existsSync(path)) continue;
    const db = openDb(path);
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .all()
        .map((row) => row.name);
      const meta = tables.includes("edgewise_meta")
        ? Object.fromEntries(
            db
              .prepare("SELECT name, value FROM edgewise_meta")
              .all()
              .map((row) => [row.name, row.value]),
          )
        : {};
      const userVersion = db.prepare("PRAGMA user_version").get()?.user_version ?? 0;
      facts[name] = { userVersion, tables, meta };
    } finally {
      db.close();
    }
  }
  const pgVersion = join(dataDir, "pglite", "PG_VERSION");
  if (existsSync(pgVersion)) facts.pglite = { postgresMajor: readFileSync(pgVersion, "utf8").trim() };
  return facts;
}

/** What only a data dir holds at its top: a directory below one that holds any of these is another data dir. */
const dataDirMarks = /^(actors|pglite)\.lock$|^(actors|traces)\.db$/;

/**
 * Every directory and file under `dir` (sorted, directories before their contents) but the skipped ones, each file
 * with its size and sha256. Another node's or broker's data dir inside it is refused: its locks and open SQLite
 * files are not checked (a node running there would be copied mid-write), and its lock files would be restored.
 */
export function walk(dir: string, prefix = "", inodes = new Map<string, string>()): ManifestEntry[] {
  const found: ManifestEntry[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = prefix ? `${prefix}/${name}` : name;
    if (!prefix && skipped.test(name)) continue;
    if (prefix && dataDirMarks.test(name)) {
      throw new EdgewiseError(
        "config.invalid",
        `${join(dir)} is another data dir (it holds ${name}) inside this one: give each node and broker a data dir of its own, none inside another's, and back up each on its own`,
      );
    }
    if (!prefix && name === manifestName) throw new Error(`the data dir holds a file named ${manifestName}`);
    const stat = lstatSync(join(dir, name));
    if (stat.isDirectory()) {
      found.push({ path, type: "dir" }, ...walk(join(dir, name), path, inodes));
    } else if (stat.isFile()) {
      // tar would store a second name of one file as a hard link, which restore refuses: refused here instead.
      const inode = `${stat.dev}:${stat.ino}`;
      const other = inodes.get(inode);
      if (other)
        throw new EdgewiseError("config.invalid", `${path} is a second name (a hard link) of ${other}`);
      inodes.set(inode, path);
      found.push({ path, type: "file", ...digestFile(join(dir, name)) });
    } else {
      // A symlink would restore as a copy or point elsewhere; a socket or fifo is no data. Refused, not skipped.
      throw new EdgewiseError("config.invalid", `${join(dir, name)} is neither a file nor a directory`);
    }
  }
  return found;
}
