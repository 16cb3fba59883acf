// Schema markers on a schema never marked (a first start): read without an error on the server, on Postgres.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { ensureSchema, readSchemaMarkers, type SchemaComponent } from "./schema-marker.ts";

const url = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `marker_first_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const admin = postgres(url, { max: 1, onnotice: () => {} });
const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { search_path: schema } });

const gadgets: SchemaComponent = {
  name: "gadgets",
  version: 1,
  lock: 8245998,
  ddl: "CREATE TABLE IF NOT EXISTS gadgets (id text PRIMARY KEY)",
};

afterAll(async () => {
  await sql.end();
  await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
  await admin.end();
});

/** The markers, read in a transaction that then runs one statement more: any error on the server aborted it. */
const readInTransaction = () =>
  sql.begin(async (tx) => {
    // A transaction of the pool: readSchemaMarkers runs one statement on it, as on the pool.
    const markers = await readSchemaMarkers(tx as unknown as postgres.Sql, [gadgets]);
    const [after] = await tx<Array<{ one: number }>>`SELECT 1 AS one`;
    return { markers, after: after?.one };
  });

test("a first start's read of the markers raises no error in Postgres (none in its log), and a later one finds them", async () => {
  await admin`CREATE SCHEMA ${admin(schema)}`;
  // Failed while the read selected from the missing table and caught its 42P01: the transaction was aborted (and
  // rejected with that error), and the server had logged `ERROR: relation "edgewise_schema" does not exist`.
  expect(await readInTransaction()).toEqual({ markers: new Map(), after: 1 });

  await ensureSchema(sql, gadgets);
  const { markers, after } = await readInTransaction();
  expect(after).toBe(1);
  expect(markers.get("gadgets")?.version).toBe(1);
  expect(markers.get("gadgets")?.relations).toEqual(new Set(["gadgets"]));
});
