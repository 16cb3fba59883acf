// The `activity_log` table: append-only by trigger, deduplicated by envelope id, searchable by subject and type.
import type postgres from "postgres";
import {
  ensureSchema,
  type SchemaComponent,
  type SchemaMarkers,
} from "../../../shared/postgres/schema-marker.ts";

/** The session setting (transaction-local) under which the trigger lets DELETE through: pruneActivity only. */
export const pruneSetting = "edgewise.activity_prune";

/**
 * UPDATE and TRUNCATE always raise; DELETE raises unless `edgewise.activity_prune` is `on` in the transaction,
 * which only `pruneActivity` sets. The trigger guards against application bugs, not against a database owner,
 * who can drop it. `subjects` (GIN) holds the envelope's subject and the ids its data names, for the filter.
 */
export const activityLogSchema: SchemaComponent = {
  name: "activity_log",
  version: 3,
  lock: 8245612,
  ddl: `
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
      -- pruneActivity's batches by age: without it the last one (fewer than a batch left) read every row kept.
      CREATE INDEX IF NOT EXISTS activity_log_recorded ON activity_log (recorded_at);
      -- Version 3: GET /v1/activity?type=admin.* (a family) reads the range of its types here, bytewise as starts_with
      -- compares; activity_log_type, in the database's collation, cannot serve a prefix, and before, such a page read
      -- the log newest first until it had a page: the whole log for a family with no entries (1.7 s for 2 million).
      CREATE INDEX IF NOT EXISTS activity_log_type_family ON activity_log ((type COLLATE "C"), seq DESC);
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
    `,
};

/** Creates the table, indexes and triggers if missing; without DDL when the marker says this version is applied. */
export function migrateActivityLog<Types extends Record<string, unknown>>(
  sql: postgres.Sql<Types>,
  markers?: SchemaMarkers,
): Promise<void> {
  return ensureSchema(sql, activityLogSchema, markers);
}
