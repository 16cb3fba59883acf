// Revocations whose records the activity log refuses (a trigger on the node's own table; real Postgres) do not open
// the `postgres` breaker: Postgres answered each refusal, so every other Postgres-backed call goes on.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type postgres from "postgres";
import type { CommerceNode } from "../commerce/bun-node.ts";
import { generateApiKey } from "../../edge/middleware/auth/api-keys.ts";
import { eventually, uniqueName } from "../commerce/client.ts";
import { type AuditedNode, call, failedRecords, startAuditedNode, token } from "./admin-events-cases.ts";

let running: CommerceNode;
let node: AuditedNode;

beforeAll(async () => {
  ({ running, node } = await startAuditedNode("audit_breaker"));
}, 60_000);
afterAll(() => running?.stop());

/**
 * A BEFORE INSERT trigger on activity_log whose function has `body`, failing every insert until the returned
 * function drops it: a RAISE (the log refusing), or a function that ends without RETURN (a trigger's bug).
 */
async function failEveryInsert(sql: postgres.Sql, body: string): Promise<() => Promise<void>> {
  const name = `fail_every_insert_${crypto.randomUUID().slice(0, 8)}`;
  await sql.unsafe(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${body} END $$`);
  await sql.unsafe(
    `CREATE TRIGGER ${name} BEFORE INSERT ON activity_log FOR EACH ROW EXECUTE FUNCTION ${name}()`,
  );
  return async () => {
    await sql.unsafe(`DROP TRIGGER ${name} ON activity_log`);
    await sql.unsafe(`DROP FUNCTION ${name}()`);
  };
}

/** The breaker's state as /metrics has it, from a render made after this call (renders are reused for 1 s). */
async function postgresBreaker(): Promise<string | undefined> {
  await Bun.sleep(1_100);
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return /edgewise_breaker_state\{dependency="postgres",state="([a-z-]+)"\} 1\b/.exec(text)?.[1];
}

test("32 revocations whose records fail leave the postgres breaker closed, and Postgres reads answer", async () => {
  const admin = await token(node, "root");
  const sub = uniqueName("breaker-keys");
  // Written straight to the table, not through the breaker: its window (10 s) holds the revocations' calls alone, a
  // revoke (answered) and its record (refused) each, as on a node where nothing else touches Postgres meanwhile.
  const keys: Array<{ id: string; key: string }> = [];
  for (let i = 0; i < 32; i++) {
    const { id, key, secretHash } = await generateApiKey();
    await node.sql`
      INSERT INTO edgewise_api_keys (id, secret_sha256, sub, scopes) VALUES (${id}, ${secretHash}, ${sub}, 'orders:read')`;
    keys.push({ id, key });
  }
  const revokedKeys: string[] = [];
  const failedBefore = await failedRecords(node, "api_key_revoked");
  // Half refused by a trigger function that ends without RETURN (2F005, a trigger's bug), half by a RAISE (P0001,
  // the log refusing): both are the server answering, and neither may count as Postgres failing.
  for (const body of ["PERFORM 1;", "RAISE EXCEPTION 'the activity log refuses every record (a test)';"]) {
    const allow = await failEveryInsert(node.sql, body);
    try {
      for (const { id } of keys.slice(0, 16)) {
        const revoked = await call(node, "DELETE", `/v1/api-keys/${id}`, admin);
        expect(revoked.status).toBe(204);
      }
      expect(await postgresBreaker()).toBe("closed");
      // Another Postgres-backed read, through the same breaker, while the log still refuses writes.
      const read = await call(node, "GET", "/v1/activity?subject=api-keys/&limit=1", admin);
      expect(read.status).toBe(200);
    } finally {
      await allow();
    }
    revokedKeys.push(...keys.splice(0, 16).map(({ key }) => key));
  }
  // Each revocation stood: its key no longer authenticates (401, not the 403 of a live key without `admin`).
  for (const key of [revokedKeys[0], revokedKeys.at(-1)] as string[]) {
    expect((await call(node, "GET", "/v1/activity", { apiKey: key })).status).toBe(401);
  }
  await eventually(
    async () => (await failedRecords(node, "api_key_revoked")) === failedBefore + 32,
    "the 32 failed records counted",
  );
  expect(node.lines.filter((line) => line.includes("breaker postgres:"))).toEqual([]);
}, 120_000);
