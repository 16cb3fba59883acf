// Postgres saying "not now" on a real node (lock_timeout, deadlock): 503 + Retry-After, or a rerun; breaker closed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { SystemAccounts } from "../../actors/commerce/billing/schema.ts";
import { generateApiKey } from "../../edge/middleware/auth/api-keys.ts";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";
import type { CommerceNode } from "../commerce/bun-node.ts";
import { eventually, uniqueName } from "../commerce/client.ts";
import {
  type AuditedNode,
  adminEventsAfter,
  lastSeq,
  startAuditedNode,
  token,
} from "../security/admin-events-cases.ts";

let running: CommerceNode;
let node: AuditedNode;
/** Another client's sessions on the node's schema, without its lock_timeout: they hold what the node waits for. */
let other: postgres.Sql;

beforeAll(async () => {
  // As an operator sets it (ALTER ROLE … SET lock_timeout): a statement gives up waiting on a lock after 1.5 s. Above
  // deadlock_timeout (1 s), so a deadlock is found and broken before the wait gives up.
  const separator = TEST_DATABASE_URL.includes("?") ? "&" : "?";
  ({ running, node } = await startAuditedNode("pg_transient", {
    DATABASE_URL: `${TEST_DATABASE_URL}${separator}lock_timeout=1500`,
  }));
  other = postgres(TEST_DATABASE_URL, {
    max: 2,
    onnotice: () => {},
    connection: { search_path: running.schema },
  });
}, 60_000);
afterAll(async () => {
  await other?.end({ timeout: 1 });
  await running?.stop();
});

/** One request; the answer's status, body, Retry-After and request id. */
async function send(method: string, path: string, credential: Record<string, string>, body?: unknown) {
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers: { ...credential, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
    retryAfter: response.headers.get("retry-after"),
    requestId: response.headers.get("x-request-id") ?? "",
  };
}

/**
 * Another session takes `lock` and holds it until `release` is called; `then` runs in that transaction after it was
 * taken, while it is held (a second lock, for a deadlock).
 */
async function holding(lock: (tx: postgres.TransactionSql) => Promise<unknown>) {
  let taken!: (tx: postgres.TransactionSql) => void;
  let release!: () => void;
  const held = new Promise<postgres.TransactionSql>((resolve) => {
    taken = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const done = other.begin(async (tx) => {
    await lock(tx);
    taken(tx);
    await released;
  });
  const tx = await held;
  return {
    tx,
    release: async () => {
      release();
      await done;
    },
  };
}

/** The `postgres` breaker's state as /metrics has it, from a render made after this call (reused for 1 s). */
async function postgresBreaker(): Promise<string | undefined> {
  await Bun.sleep(1_100);
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return /edgewise_breaker_state\{dependency="postgres",state="([a-z-]+)"\} 1\b/.exec(text)?.[1];
}

/** The node's log line at warn or above for one request. */
function logged(requestId: string): Record<string, unknown> | undefined {
  return node.lines
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((line) => line.msg === "request failed" && line.request_id === requestId);
}

const unavailable = { type: "https://edgewise.dev/problems/unavailable", status: 503, code: "unavailable" };

test("a revocation that waits on a locked key past lock_timeout is 503 with Retry-After, a warning, and retried it stands", async () => {
  const root = { authorization: `Bearer ${await token(node, "root")}` };
  const { id, key, secretHash } = await generateApiKey();
  await node.sql`
    INSERT INTO edgewise_api_keys (id, secret_sha256, sub, scopes) VALUES (${id}, ${secretHash}, 'locked', 'orders:read')`;
  const lock = await holding((tx) => tx`SELECT 1 FROM edgewise_api_keys WHERE id = ${id} FOR UPDATE`);
  let refused: Awaited<ReturnType<typeof send>>;
  try {
    refused = await send("DELETE", `/v1/api-keys/${id}`, root);
  } finally {
    await lock.release();
  }
  expect(refused).toMatchObject({ status: 503, body: unavailable, retryAfter: "1" });
  await eventually(async () => logged(refused.requestId) !== undefined, "the refusal's log line");
  expect(logged(refused.requestId)).toMatchObject({ level: "warn", error: { cause: { code: "55P03" } } });
  // Nothing was applied: the key still works (403 for a scope it lacks, not 401); sent again, the revocation stands.
  expect((await send("GET", "/v1/activity", { "x-api-key": key })).status).toBe(403);
  expect((await send("DELETE", `/v1/api-keys/${id}`, root)).status).toBe(204);
  expect((await send("GET", "/v1/activity", { "x-api-key": key })).status).toBe(401);
}, 60_000);

test("balance sets refused by a held account row leave the breaker closed; each is 503 with Retry-After, none applied", async () => {
  const root = { authorization: `Bearer ${await token(node, "root")}` };
  const customerId = uniqueName("locked-account");
  expect((await send("PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 100 })).status).toBe(200);
  const lock = await holding((tx) => tx`SELECT 1 FROM billing_accounts WHERE id = ${customerId} FOR UPDATE`);
  const answers: Array<Awaited<ReturnType<typeof send>>> = [];
  try {
    // Five in a row: as many as open the breaker when each counts as Postgres failing.
    for (let i = 1; i <= 5; i++)
      answers.push(await send("PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 100 + i }));
  } finally {
    await lock.release();
  }
  for (const answer of answers)
    expect(answer).toMatchObject({ status: 503, body: unavailable, retryAfter: "1" });
  expect(await postgresBreaker()).toBe("closed");
  const [journal] = await node.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM billing_transactions WHERE customer_id = ${customerId}`;
  expect(journal?.n).toBe(1); // the first set's funding only
  expect((await send("GET", `/v1/accounts/${customerId}`, root)).body.balanceCents).toBe(100);
  expect((await send("PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 250 })).status).toBe(200);
  expect((await send("GET", `/v1/accounts/${customerId}`, root)).body.balanceCents).toBe(250);
  expect(node.lines.filter((line) => line.includes("breaker postgres:"))).toEqual([]);
}, 60_000);

test("a balance set the server ends to break a deadlock runs once more in place: 200, set once, recorded once", async () => {
  const root = { authorization: `Bearer ${await token(node, "root")}` };
  const customerId = uniqueName("deadlocked-account");
  expect((await send("PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 100 })).status).toBe(200);
  const before = await lastSeq(node.sql);
  // The set locks the customer's row, then waits on the funding account's, which the other session holds; that one
  // then asks for the customer's row: a deadlock, which the waiting set is the first to find (deadlock_timeout).
  const lock = await holding(
    (tx) => tx`SELECT 1 FROM billing_accounts WHERE id = ${SystemAccounts.funding} FOR UPDATE`,
  );
  const [{ pid } = { pid: 0 }] = await lock.tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
  // The other session asks for the customer's row as soon as the set waits on it, from inside the server: the set
  // checks for a deadlock once, deadlock_timeout (1 s) after it began to wait, and a request made later (a test
  // polling from a loaded machine took longer once) is no deadlock yet then, so the set met lock_timeout: 503.
  await lock.tx.unsafe(`
    CREATE OR REPLACE FUNCTION pg_temp.until_blocking(blocker int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      LOOP
        IF EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND blocker = ANY(pg_blocking_pids(pid))) THEN
          RETURN true;
        END IF;
        PERFORM pg_sleep(0.005);
      END LOOP;
    END $$`);
  // Sent before the set (execute(): postgres.js sends a query only once awaited otherwise), so it is waiting for the
  // set on the server when the set begins to wait; it gets the customer's row only once the server ended the set's
  // transaction (40P01, rolled back).
  const asked = lock.tx`
    SELECT 1 FROM billing_accounts WHERE id = ${customerId} AND pg_temp.until_blocking(${pid}) FOR UPDATE`.execute();
  const answer = send("PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 300 });
  await asked;
  await lock.release();
  const set = await answer;
  expect(set).toMatchObject({ status: 200, body: { customerId, balanceCents: 300 } });
  expect((await send("GET", `/v1/accounts/${customerId}`, root)).body.balanceCents).toBe(300);
  const [journal] = await node.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM billing_transactions WHERE customer_id = ${customerId}`;
  expect(journal?.n).toBe(2); // 100, then +200: the rolled-back attempt left nothing
  const records = await adminEventsAfter(node.sql, before);
  expect(records.map((record) => record.type)).toEqual(["admin.account_set"]);
  expect(logged(set.requestId)).toBeUndefined();
}, 60_000);
