// Schema markers: a store's DDL runs once per version of it, so a start whose stores are current takes no table lock.
import type postgres from "postgres";
import { sha256Hex } from "../crypto/hex.ts";
import { EdgewiseError } from "../errors/index.ts";

/**
 * One store's Postgres schema. `ddl` is idempotent and additive (it never drops or narrows anything), so running it
 * on a schema some version of it made is always safe; the marker only saves doing so on every start.
 */
export interface SchemaComponent {
  /** The marker's key, e.g. `billing`. */
  readonly name: string;
  /**
   * Raised whenever `ddl` changes (deploy/schema-versions.test.ts pins each). A node whose version is below the
   * marker's leaves the newer schema as it is; one at or above it applies its `ddl` unless the marker matches it.
   */
  readonly version: number;
  /** Arbitrary but fixed: serializes the component's DDL across nodes starting at once. */
  readonly lock: number;
  readonly ddl: string;
}

/** What the last node to apply a component's DDL applied, and what of it is there now. */
export interface SchemaMarker {
  version: number;
  /** SHA-256 (hex) of the DDL text. */
  fingerprint: string;
  /**
   * Of the tables and indexes the components asked about create (`schemaRelations`), those in the marker's schema
   * when it was read (pg_class: no lock on them). Never the schema's other relations: it may hold thousands.
   */
  relations: ReadonlySet<string>;
}

/** The markers of the pool's schema, by component name: read once at a start and given to every store. */
export type SchemaMarkers = ReadonlyMap<string, SchemaMarker>;

/** Any postgres.js pool: the stores' custom types do not matter to the marker's text and int columns. */
type Pool<Types extends Record<string, unknown>> = postgres.Sql<Types>;

/** Arbitrary but fixed: serializes the creation of the marker table itself. */
const markerTableLock = 8245500;

const markerTable = `
  CREATE TABLE IF NOT EXISTS edgewise_schema (
    component text PRIMARY KEY,
    version int NOT NULL,
    fingerprint text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;

/**
 * Which of the names in `$1` (a JSON array) are relations of the marker's schema, read beside each marker from the
 * catalog, without locking any of them. Only those names, by pg_class's (relname, relnamespace) index: a schema that
 * also holds thousands of relations of its own (a user's tables beside Edgewise's) costs no more to read.
 */
const relationsNow = `
  ARRAY(SELECT relname::text FROM pg_class
    WHERE relname = ANY(ARRAY(SELECT jsonb_array_elements_text($1::text::jsonb)))
      AND relnamespace = to_regnamespace(current_schema())) AS relations`;

/** The names `relationsNow` asks about: those the components' DDL creates. */
const askedNames = (components: readonly SchemaComponent[]) =>
  JSON.stringify([...new Set(components.flatMap((component) => schemaRelations(component)))]);

const fingerprints = new WeakMap<SchemaComponent, Promise<string>>();
const createdRelations = new WeakMap<SchemaComponent, readonly string[]>();

/** One identifier, quoted or not. */
const identifier = '(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)';
const created = new RegExp(
  String.raw`\bCREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(${identifier}(?:\s*\.\s*${identifier})*)`,
  "gi",
);
/** Postgres keeps at most NAMEDATALEN - 1 bytes of an identifier, and cuts a longer one there (on a character). */
const maxIdentifierBytes = 63;

/** The name pg_class holds for an unqualified identifier as written: quoted kept as is, else folded; cut to 63 bytes. */
function catalogName(written: string): string {
  const name = written.startsWith('"') ? written.slice(1, -1).replaceAll('""', '"') : written.toLowerCase();
  let cut = "";
  for (const char of name) {
    if (new TextEncoder().encode(cut + char).length > maxIdentifierBytes) break;
    cut += char;
  }
  return cut;
}

/**
 * The tables and indexes the component's DDL creates (`CREATE [UNIQUE] TABLE|INDEX IF NOT EXISTS name`): a marker
 * counts as current only while they are all there, so one dropped by hand or left out of a partial restore is made
 * again at the next start instead of failing every query that needs it. Named as pg_class names them (folded to
 * lower case unless quoted, cut at 63 bytes), or a start would find one missing every time and run the DDL at every
 * start; a schema-qualified name is left out, since it may be another schema's than the one the markers look in.
 */
export function schemaRelations(component: SchemaComponent): readonly string[] {
  let names = createdRelations.get(component);
  if (!names) {
    const parts = (written: string) => written.match(new RegExp(identifier, "g")) ?? [];
    names = [...component.ddl.matchAll(created)]
      .map((match) => parts(match[1] as string))
      .filter((written) => written.length === 1)
      .map((written) => catalogName(written[0] as string));
    createdRelations.set(component, names);
  }
  return names;
}

/** SHA-256 (hex) of the component's DDL, through WebCrypto (Bun, Deno, workerd); computed once per component. */
export function schemaFingerprint(component: SchemaComponent): Promise<string> {
  let fingerprint = fingerprints.get(component);
  if (!fingerprint) {
    fingerprint = sha256Hex(component.ddl);
    fingerprints.set(component, fingerprint);
  }
  return fingerprint;
}

/**
 * The markers in the first schema of the pool's search_path (where the stores' tables are), in two statements (the
 * catalog, then the table) and without a table lock but the marker table's own ACCESS SHARE. None when the table is
 * missing there, without an error on the server: a marker table in a later schema of the path (another
 * deployment's, in `public`) is not this schema's and is ignored.
 * `components`: the stores the markers are for, whose tables and indexes are looked up beside them; a store not
 * among them is not taken as current from these markers, and checks its own under its lock (one transaction more).
 */
export async function readSchemaMarkers<Types extends Record<string, unknown>>(
  sql: Pool<Types>,
  components: readonly SchemaComponent[] = [],
): Promise<SchemaMarkers> {
  // Asked of the catalog first: a SELECT from the missing table would fail, and the server would log `ERROR:
  // relation "edgewise_schema" does not exist` for every healthy first start. One round trip more, once per start.
  const [table] = await sql<Array<{ exists: boolean }>>`
    SELECT to_regclass(format('%I.edgewise_schema', current_schema())) IS NOT NULL AS exists`;
  if (!table?.exists) return new Map();
  try {
    const rows = await sql.unsafe<
      Array<{ component: string; version: number; fingerprint: string; relations: string[] }>
    >(
      `
      SELECT component, version, fingerprint, ${relationsNow} FROM edgewise_schema
      WHERE tableoid = to_regclass(format('%I.edgewise_schema', current_schema()))::oid`,
      [askedNames(components)],
    );
    const relations = new Set(rows[0]?.relations ?? []);
    return new Map(
      rows.map((row) => [row.component, { version: row.version, fingerprint: row.fingerprint, relations }]),
    );
  } catch (error) {
    // Dropped between the two statements (by hand): as never marked.
    if ((error as { code?: unknown }).code === "42P01") return new Map();
    throw error;
  }
}

function isCurrent(
  marker: SchemaMarker | undefined,
  component: SchemaComponent,
  fingerprint: string,
): boolean {
  if (!marker) return false;
  // A newer node applied a later version: this older node's DDL could only put back older function bodies.
  if (marker.version > component.version) return true;
  if (marker.version !== component.version || marker.fingerprint !== fingerprint) return false;
  // Applied, but something it made is gone (dropped by hand, a partial restore): its DDL makes only what is missing.
  return schemaRelations(component).every((name) => marker.relations.has(name));
}

/**
 * How long a start waits, in all, for the locks its migration needs: another node's migration of the same component
 * (the advisory lock, held for as long as its DDL runs), or a table its DDL must lock while another session holds
 * it. The role's `lock_timeout` and `statement_timeout` (an operator's `ALTER ROLE … SET`, or DATABASE_URL's options)
 * are bounds for serving requests: under them, a node starting beside one that migrates for longer than 200 ms failed
 * to start (55P03 or 57014 on `pg_advisory_xact_lock`), where waiting would have succeeded.
 */
export const schemaMigrationWaitMs = 60_000;

/** A transaction's statement that met a lock it could not have in time (55P03), or a deadlock the server broke. */
function lockRefused(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "55P03" || code === "40P01";
}

/**
 * Applies the component's DDL unless the marker says it is current, and then records it, in one transaction
 * under the component's advisory lock (re-checked there: another node may have applied it meanwhile). Given the
 * start's `markers` (readSchemaMarkers, with this component among those it was asked about), a current component
 * costs no round trip at all; without, one.
 *
 * The transaction sets aside the role's `statement_timeout` (a DDL that rewrites a table takes what it takes, and
 * cancelled halfway it would be redone, and cancelled, at every start) and waits for the advisory lock as long as
 * `waitMs` allows. Its DDL waits for a table lock no longer than the role's `lock_timeout` (while it waits, every
 * query of that table queues behind it), and the transaction is run again until `waitMs` is spent; then the start
 * fails with an `unavailable` that says which component and why.
 */
export async function ensureSchema<Types extends Record<string, unknown>>(
  sql: Pool<Types>,
  component: SchemaComponent,
  markers?: SchemaMarkers,
  waitMs = schemaMigrationWaitMs,
): Promise<void> {
  const fingerprint = await schemaFingerprint(component);
  const known = markers ?? (await readSchemaMarkers(sql, [component]));
  if (isCurrent(known.get(component.name), component, fingerprint)) return;
  const deadline = performance.now() + waitMs;
  for (let pause = 50; ; pause = Math.min(pause * 2, 1_000)) {
    try {
      return await migrateOnce(sql, component, fingerprint, deadline);
    } catch (error) {
      const left = deadline - performance.now();
      if (!lockRefused(error)) throw error;
      if (left <= 0) {
        throw new EdgewiseError(
          "unavailable",
          `the ${component.name} schema could not be migrated: its locks were not free within ${Math.round(waitMs / 1_000)} s (another node migrating it, or a session holding its tables); start again once they are`,
          { cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
    }
  }
}

/** Milliseconds left until `deadline`, as a setting's text: at least 1 (0 would be no bound at all). */
const msLeft = (deadline: number) => String(Math.max(1, Math.ceil(deadline - performance.now())));

async function migrateOnce<Types extends Record<string, unknown>>(
  sql: Pool<Types>,
  component: SchemaComponent,
  fingerprint: string,
  deadline: number,
): Promise<void> {
  await sql.begin(async (tx) => {
    const [settings] = await tx<Array<{ lockTimeout: string }>>`
      SELECT current_setting('lock_timeout') AS "lockTimeout",
             set_config('statement_timeout', '0', true), set_config('lock_timeout', ${msLeft(deadline)}, true)`;
    await tx`SELECT pg_advisory_xact_lock(${component.lock})`;
    const [table] = await tx<Array<{ exists: boolean }>>`
      SELECT to_regclass(format('%I.edgewise_schema', current_schema())) IS NOT NULL AS exists`;
    if (!table?.exists) {
      await tx`SELECT pg_advisory_xact_lock(${markerTableLock})`;
      await tx.unsafe(markerTable);
    }
    const [row] = await tx.unsafe<Array<{ version: number; fingerprint: string; relations: string[] }>>(
      `SELECT version, fingerprint, ${relationsNow} FROM edgewise_schema WHERE component = $2`,
      [askedNames([component]), component.name],
    );
    const marker = row && { ...row, relations: new Set(row.relations) };
    if (isCurrent(marker, component, fingerprint)) return;
    // The role's bound on a table lock, if it has one (else what is left): waiting, the DDL holds up that table.
    const role = settings?.lockTimeout ?? "0";
    await tx`SELECT set_config('lock_timeout', ${role === "0" ? msLeft(deadline) : role}, true)`;
    await tx.unsafe(component.ddl);
    await tx`
      INSERT INTO edgewise_schema (component, version, fingerprint)
      VALUES (${component.name}, ${component.version}, ${fingerprint})
      ON CONFLICT (component) DO UPDATE
        SET version = excluded.version, fingerprint = excluded.fingerprint, applied_at = now()`;
  });
}
