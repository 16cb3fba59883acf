// The `activity_log` table: append-only by trigger, deduplicated by envelope id, searchable by subject and type.
import type postgres from "postgres";

/** Arbitrary but fixed: serializes concurrent migrations from several nodes starting at once. */
const migrationLock = 8245612;

/** The session setting (transaction-local) under which the trigger lets DELETE through: pruneActivity only. */
export const pruneSetting = "edgewise.activity_prune";

/**
 * UPDATE and TRUNCATE always raise; DELETE raises unless `edgewise.activity_prune` is `on` in the transaction,
 * which only `pruneActivity` sets. The trigger guards against application bugs, not against a database owner,
 * who can drop it. `subjects` (GIN) holds the envelope's subject and the ids its data names, for the filter.
 */
export async function migrateActivityLog<Types extends Record<string, unknown>>(
  sql: postgres.Sql<Types>,
): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${migrationLock})`;
    await tx.unsafe(`
      CREATE TABLE IF NOT EXISTS activity_log (
        seq bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        type text NOT NULL,
        subject text,
        source text NOT NULL,
        time timestamptz NOT NULL,
        data jsonb,
        envelope jsonb NOT NULL,
        subjects text[] NOT NULL DEFAULT '{}',
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX IF NOT EXISTS activity_log_type ON activity_log (type, seq DESC);
      CREATE INDEX IF NOT EXISTS activity_log_subjects ON activity_log USING gin (subjects);
      CREATE OR REPLACE FUNCTION activity_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' AND current_setting('${pruneSetting}', true) = 'on' THEN
          RETURN OLD;
        END IF;
        RAISE EXCEPTION 'activity_log is append-only: % is not allowed', TG_OP;
      END
      $$;
      CREATE OR REPLACE TRIGGER activity_log_append_only BEFORE UPDATE OR DELETE ON activity_log
        FOR EACH ROW EXECUTE FUNCTION activity_log_append_only();
      CREATE OR REPLACE TRIGGER activity_log_no_truncate BEFORE TRUNCATE ON activity_log
        FOR EACH STATEMENT EXECUTE FUNCTION activity_log_append_only();
    `);
  });
}
