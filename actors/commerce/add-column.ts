// DDL that adds a column to an existing table only where it is missing, without locking the table when it is there.

/**
 * `ALTER TABLE … ADD COLUMN IF NOT EXISTS` takes an ACCESS EXCLUSIVE lock on the table even when the column is
 * already there, and a migration runs on every node start and, on Workers, in every new isolate. Queued behind one
 * long reader (a `pg_dump`, a slow search), that lock stalled every read of the table until the reader finished.
 * This checks the catalog first (no table lock) and alters only a table that lacks the column. `table` resolves
 * through the search path, as the rest of the migration's DDL does; `definition` is the column's type and
 * constraints. Both are the caller's constants, never input.
 */
export function addColumnIfMissing(table: string, column: string, definition: string): string {
  return `
    DO $add_column$ BEGIN
      IF NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = '${table}'::regclass AND attname = '${column}' AND NOT attisdropped
      ) THEN
        ALTER TABLE ${table} ADD COLUMN ${column} ${definition};
      END IF;
    END $add_column$;`;
}
