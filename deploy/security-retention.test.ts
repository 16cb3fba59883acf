// A node prunes the security events past their retention from the activity log as it records new ones.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { securityEventRetentionMs } from "../actors/commerce/projections/index.ts";
import { TEST_DATABASE_URL } from "../test/broker/helpers.ts";
import { startCommerceNode, type CommerceNode } from "../test/commerce/bun-node.ts";
import { eventually } from "../test/commerce/client.ts";

let node: CommerceNode;
let sql: postgres.Sql;

beforeAll(async () => {
  node = await startCommerceNode("security_retention");
  sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {}, connection: { search_path: node.schema } });
}, 30_000);
afterAll(async () => {
  await sql?.end();
  await node?.stop();
});

const count = async (where: string) =>
  Number((await sql.unsafe(`SELECT count(*)::int AS n FROM activity_log WHERE ${where}`))[0]?.n);

test("old security events go once the node records another; domain events of any age stay", async () => {
  // What weeks of an attack left: rows recorded past the retention (inserted with their age; the log forbids UPDATE).
  const old = `now() - interval '${securityEventRetentionMs + 86_400_000} milliseconds'`;
  await sql.unsafe(`
    INSERT INTO activity_log (id, type, source, time, envelope, recorded_at)
    SELECT 'old-' || i, 'security.auth_failed', 'edgewise://gateway', now(), '{}', ${old}
    FROM generate_series(1, 3000) AS i`);
  await sql.unsafe(`
    INSERT INTO activity_log (id, type, source, time, envelope, recorded_at)
    VALUES ('old-domain', 'OrderPlaced', 'edgewise://test', now(), '{}', ${old})`);

  const forged = await fetch(`${node.node.url}/v1/orders`, { headers: { authorization: "Bearer a.b.c" } });
  expect(forged.status).toBe(401);
  await eventually(
    async () => (await count("id LIKE 'old-%' AND type LIKE 'security.%'")) === 0,
    "the pruning",
  );
  expect(await count("type = 'security.auth_failed' AND id NOT LIKE 'old-%'")).toBe(1);
  expect(await count("id = 'old-domain'")).toBe(1);
}, 30_000);
