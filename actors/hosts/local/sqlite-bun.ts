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
    close: () => db.close(),
  };
}
