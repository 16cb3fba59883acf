// node:sqlite behind the SqlDatabase port (Deno 2.9; also Node 22.5+).
import { DatabaseSync } from "node:sqlite";
import { pragmas, type SqlDatabase, type SqlRow, type SqlValue, type SyncMode } from "./sql.ts";

export function openNodeSqlite(path: string, sync: SyncMode = "FULL"): SqlDatabase {
  const db = new DatabaseSync(path);
  db.exec(pragmas(sync));
  let depth = 0;
  return {
    exec: (sql) => db.exec(sql),
    prepare(sql) {
      const statement = db.prepare(sql);
      return {
        run: (...params: SqlValue[]) => ({ changes: Number(statement.run(...params).changes) }),
        get: (...params: SqlValue[]) => (statement.get(...params) as SqlRow | undefined) ?? undefined,
        all: (...params: SqlValue[]) => statement.all(...params) as SqlRow[],
      };
    },
    // node:sqlite has no transaction helper; nested calls join the outer transaction.
    transaction<T>(fn: () => T): T {
      if (depth > 0) return fn();
      db.exec("BEGIN IMMEDIATE");
      depth++;
      try {
        const result = fn();
        db.exec("COMMIT");
        return result;
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      } finally {
        depth--;
      }
    },
    close: () => db.close(),
  };
}
