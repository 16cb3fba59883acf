// Schema markers on the real Postgres: applied once per version, upgrades, older nodes, concurrent first starts.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { ensureSchema, readSchemaMarkers, type SchemaComponent, schemaRelations } from "./schema-marker.ts";

const url = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const suffix = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const schemas: string[] = [];
const pools: postgres.Sql[] = [];
const admin = postgres(url, { max: 1, onnotice: () => {} });

/** A fresh schema, and a pool whose search_path starts with it (then `rest`, if given). */
async function freshSchema(
  name: string,
  rest: string[] = [],
): Promise<{ schema: string; sql: postgres.Sql }> {
  const schema = `marker_${name}_${suffix}`;
  await admin`CREATE SCHEMA ${admin(schema)}`;
  schemas.push(schema);
  return { schema, sql: pool(schema, rest) };
}

function pool(schema: string, rest: string[] = []): postgres.Sql {
  const sql = postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: [schema, ...rest].join(",") },
  });
  pools.push(sql);
  return sql;
}

/** A component whose DDL logs each time it runs, so a test can count the applications. */
const component = (version: number, column: string): SchemaComponent => ({
  name: "widgets",
  version,
  lock: 8245999,
  ddl: `
    CREATE TABLE IF NOT EXISTS widget_ddl_runs (n serial PRIMARY KEY, version int NOT NULL);
    CREATE TABLE IF NOT EXISTS widgets (id text PRIMARY KEY);
    ALTER TABLE widgets ADD COLUMN IF NOT EXISTS ${column} text;
    INSERT INTO widget_ddl_runs (version) VALUES (${version});`,
});

const runs = async (sql: postgres.Sql) =>
  (await sql<{ version: number }[]>`SELECT version FROM widget_ddl_runs ORDER BY n`).map((r) => r.version);

afterAll(async () => {
  await Promise.all(pools.map((sql) => sql.end()));
  for (const schema of schemas) await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
  await admin.end();
});

test("the DDL runs on the first start only; a changed DDL (a new version) runs once on the next start", async () => {
  const { sql } = await freshSchema("upgrade");
  expect(await readSchemaMarkers(sql)).toEqual(new Map());
  const v1 = component(1, "colour");
  await ensureSchema(sql, v1);
  await ensureSchema(sql, v1);
  await ensureSchema(sql, v1, await readSchemaMarkers(sql, [v1]));
  expect(await runs(sql)).toEqual([1]);

  const v2 = component(2, "size");
  await ensureSchema(sql, v2);
  await ensureSchema(sql, v2);
  expect(await runs(sql)).toEqual([1, 2]);
  expect((await readSchemaMarkers(sql)).get("widgets")?.version).toBe(2);
});

test("an older node starting on a newer schema runs no DDL and leaves the newer marker", async () => {
  const { sql } = await freshSchema("downgrade");
  await ensureSchema(sql, component(2, "size"));
  const before = (await readSchemaMarkers(sql)).get("widgets");
  await ensureSchema(sql, component(1, "colour"));
  expect(await runs(sql)).toEqual([2]);
  expect((await readSchemaMarkers(sql)).get("widgets")).toEqual(before as NonNullable<typeof before>);
});

test("the same version with a different DDL (a change without a version bump) is applied too", async () => {
  const { sql } = await freshSchema("unbumped");
  await ensureSchema(sql, component(1, "colour"));
  await ensureSchema(sql, component(1, "shade"));
  expect(await runs(sql)).toEqual([1, 1]);
});

test("many first starts at once on an empty schema all succeed, and each DDL runs once", async () => {
  const { schema, sql } = await freshSchema("concurrent");
  // Different components, as a node's stores are: their own locks do not serialize creating the marker table.
  const parts = Array.from({ length: 6 }, (_, i) => ({
    name: `part_${i}`,
    version: 1,
    lock: 8245990 + i,
    // Slow, as a first start's DDL is: another start comes to the marker table while this one has not committed.
    ddl: `CREATE TABLE IF NOT EXISTS part_${i} (id text PRIMARY KEY); SELECT pg_sleep(0.05);`,
  }));
  const starts = Array.from({ length: 3 }, () => pool(schema));
  await Promise.all(starts.map((start) => start`SELECT 1`)); // connected, so their first transactions overlap
  // A node migrates one part after another; each start here in another order, so different parts meet at the
  // marker table.
  await Promise.all(
    starts.map(async (start, i) => {
      for (const part of [...parts.slice(i * 2), ...parts.slice(0, i * 2)]) await ensureSchema(start, part);
    }),
  );
  const v1 = component(1, "colour");
  await Promise.all(starts.map((start) => ensureSchema(start, v1)));
  expect(await runs(sql)).toEqual([1]);
  expect([...(await readSchemaMarkers(sql)).keys()].sort()).toEqual(
    [...parts.map((p) => p.name), "widgets"].sort(),
  );
});

test("a marker table in a later schema of the search path is not this schema's", async () => {
  const { schema: other, sql: otherSql } = await freshSchema("public_like");
  await ensureSchema(otherSql, component(1, "colour"));
  const { sql } = await freshSchema("own", [other]);
  expect(await readSchemaMarkers(sql)).toEqual(new Map());
  await ensureSchema(sql, component(1, "colour"));
  const [own] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_name IN ('widgets', 'edgewise_schema')`;
  expect(own?.n).toBe(2);
});

test("deleting the marker row (the documented recovery) makes the next start apply the DDL again", async () => {
  const { sql } = await freshSchema("recovery");
  await ensureSchema(sql, component(1, "colour"));
  await sql`DELETE FROM edgewise_schema WHERE component = 'widgets'`;
  await ensureSchema(sql, component(1, "colour"));
  expect(await runs(sql)).toEqual([1, 1]);
});

test("a marked component whose table or index was dropped is applied again at the next start, and only then", async () => {
  const { sql } = await freshSchema("dropped");
  const v1: SchemaComponent = {
    ...component(1, "colour"),
    ddl: `${component(1, "colour").ddl}
      CREATE INDEX IF NOT EXISTS widgets_colour ON widgets (colour);`,
  };
  await ensureSchema(sql, v1);
  await sql`DROP TABLE widgets`; // by hand, or a restore of some tables only: the marker says applied
  await ensureSchema(sql, v1, await readSchemaMarkers(sql, [v1]));
  expect(await sql`SELECT to_regclass('widgets')::text AS t`.then((r) => r[0]?.t)).toBe("widgets");
  await sql`DROP INDEX widgets_colour`;
  await ensureSchema(sql, v1); // the markers read here, and re-checked under the lock
  expect(await sql`SELECT to_regclass('widgets_colour')::text AS t`.then((r) => r[0]?.t)).toBe(
    "widgets_colour",
  );
  // Complete again: later starts run no DDL.
  await ensureSchema(sql, v1, await readSchemaMarkers(sql, [v1]));
  await ensureSchema(sql, v1);
  expect(await runs(sql)).toEqual([1, 1, 1]);
});

test("the markers name only the tables and indexes of the stores asked about, not the schema's other relations", async () => {
  const { sql } = await freshSchema("crowded");
  const v1: SchemaComponent = {
    ...component(1, "colour"),
    ddl: `${component(1, "colour").ddl}
      CREATE INDEX IF NOT EXISTS widgets_colour ON widgets (colour);`,
  };
  await ensureSchema(sql, v1);
  // A schema shared with a user's own tables (a table, its sequence and its index each): read at every start.
  await sql.unsafe(
    Array.from({ length: 200 }, (_, i) => `CREATE TABLE user_table_${i} (id serial PRIMARY KEY);`).join(""),
  );
  const markers = await readSchemaMarkers(sql, [v1]);
  expect([...(markers.get("widgets")?.relations ?? [])].sort()).toEqual([
    "widget_ddl_runs",
    "widgets",
    "widgets_colour",
  ]);
  await ensureSchema(sql, v1, markers);
  // Markers read without asking about a store do not make it current: it checks under its lock, and runs no DDL.
  await ensureSchema(sql, v1, await readSchemaMarkers(sql));
  expect(await runs(sql)).toEqual([1]);
  await sql`DROP INDEX widgets_colour`;
  await ensureSchema(sql, v1, await readSchemaMarkers(sql, [v1]));
  expect(await runs(sql)).toEqual([1, 1]);
});

test("tables and indexes are named as the catalog names them, so a complete store runs no DDL on its next start", async () => {
  const { schema, sql } = await freshSchema("names");
  const long = `widgets_colour_${"x".repeat(60)}`; // Postgres keeps its first 63 bytes
  const v1: SchemaComponent = {
    ...component(1, "colour"),
    ddl: `${component(1, "colour").ddl}
      CREATE INDEX IF NOT EXISTS ${long} ON widgets (colour);
      CREATE TABLE IF NOT EXISTS "Widget Parts" (id text PRIMARY KEY);
      CREATE TABLE IF NOT EXISTS ${schema}.widget_notes (id text PRIMARY KEY);
      CREATE UNIQUE INDEX IF NOT EXISTS WIDGETS_ID ON widgets (id);`,
  };
  expect(schemaRelations(v1)).toEqual([
    "widget_ddl_runs",
    "widgets",
    long.slice(0, 63),
    "Widget Parts",
    "widgets_id",
  ]);
  await ensureSchema(sql, v1);
  await ensureSchema(sql, v1, await readSchemaMarkers(sql, [v1]));
  await ensureSchema(sql, v1);
  expect(await runs(sql)).toEqual([1]);
  await sql`DROP TABLE "Widget Parts"`;
  await ensureSchema(sql, v1, await readSchemaMarkers(sql, [v1]));
  expect(await runs(sql)).toEqual([1, 1]);
});
