// The synchronous SQLite surface the local host needs, so bun:sqlite and node:sqlite fit behind one store.

export type SqlValue = string | number | bigint | null | Uint8Array;
export type SqlRow = Record<string, SqlValue>;

export interface SqlStatement {
  run(...params: SqlValue[]): { changes: number };
  get(...params: SqlValue[]): SqlRow | undefined;
  all(...params: SqlValue[]): SqlRow[];
}

export interface SqlDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqlStatement;
  /** Runs `fn` in one transaction: all of its writes or none. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

export type SyncMode = "FULL" | "NORMAL";

/** WAL: readers never block the writer; FULL fsyncs each (group) commit, NORMAL survives a crash of the process. */
export function pragmas(sync: SyncMode): string {
  return `PRAGMA journal_mode = WAL; PRAGMA synchronous = ${sync}; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;`;
}

export const schemaVersion = 1;

export const schema = `
CREATE TABLE IF NOT EXISTS edgewise_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS actor_state (
  actor TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
  actor TEXT NOT NULL, id TEXT NOT NULL, reply TEXT, at INTEGER NOT NULL, PRIMARY KEY (id, actor)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inbox_by_time ON inbox (at);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, actor TEXT NOT NULL, envelope TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, retry_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_by_actor ON outbox (actor, retry_at);
CREATE TABLE IF NOT EXISTS timers (
  actor TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, envelope TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (actor, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_by_time ON timers (at);
CREATE TABLE IF NOT EXISTS kv (
  actor TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (actor, key)
) WITHOUT ROWID;
`;
