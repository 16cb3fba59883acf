// bun:sqlite behind the SqlDatabase port (Bun only).
import { Database } from "bun:sqlite";
import { pragmas, type SqlDatabase, type SqlRow, type SqlValue, type SyncMode } from "./sql.ts";

export function openBunSqlite(path: string, sync: SyncMode = "FULL"): SqlDatabase {
  const db = new Database(path, { create: true, strict: true });
  db.exec(pragmas(sync));
  return {
    exec: (sql) => db.exec(sql),
    prepare(sql) {
      const statement = db.prepare<SqlRow, SqlValue[]>(sql);
      return {
        run: (...params) => ({ changes: statement.run(...params).changes }),
        get: (...params) => statement.get(...params) ?? undefined,
        all: (...params) => statement.all(...params),
      };
    },
    transaction: (fn) => db.transaction(fn)(),
    // close(true): finalize the prepared statements and release the file now. Plain close() defers that until they
    // are collected, so a stopped node kept actors.db open (and its locks) for as long as the process lived.
    close: () => db.close(true),
  };
}
