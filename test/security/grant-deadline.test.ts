// An API key or a webhook subscription created in one transaction with its admin.* record, against another session
// holding a lock past the caller's deadline (the `postgres` timeout, 3 s here; real Postgres): answered 504 and rolled
// back when it resumes, never committed after that answer, and the warn line saying so is true.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type postgres from "postgres";
import type { CommerceNode } from "../commerce/bun-node.ts";
import { eventually, uniqueName } from "../commerce/client.ts";
import {
  adminEventsAfter,
  type Answer,
  type AuditedNode,
  call,
  deadlineTestTimeoutMs,
  holdingPastDeadline,
  lastSeq,
  startAuditedNode,
  token,
} from "./admin-events-cases.ts";

let running: CommerceNode;
let node: AuditedNode;

beforeAll(async () => {
  ({ running, node } = await startAuditedNode(
    "grant_deadline",
    {},
    { postgresTimeoutMs: deadlineTestTimeoutMs },
  ));
}, 60_000);
afterAll(() => running?.stop());

const lockKeys = (tx: postgres.TransactionSql) => tx`LOCK TABLE edgewise_api_keys IN SHARE MODE`;
const lockSubscriptions = (tx: postgres.TransactionSql) => tx`LOCK TABLE webhook_subscriptions IN SHARE MODE`;
const lockLog = (tx: postgres.TransactionSql) => tx`LOCK TABLE activity_log IN SHARE ROW EXCLUSIVE MODE`;

/**
 * `create` while another session holds `lock` past the timeout, until it answers; returns its answer and the admin
 * records written since, read once the lock is let go and the creation's own transaction has gone on.
 */
async function createPastDeadline(
  lock: (tx: postgres.TransactionSql) => Promise<unknown>,
  create: () => Promise<Answer>,
): Promise<{ answer: Answer; records: unknown[] }> {
  const before = await lastSeq(node.sql);
  const hold = await holdingPastDeadline(node.sql, lock);
  const answer = await create();
  await hold.letGo();
  await Bun.sleep(300); // the creation's own transaction goes on once the lock is let go
  return { answer, records: await adminEventsAfter(node.sql, before) };
}

function expectTimedOut(answer: Answer): void {
  expect(answer.status).toBe(504);
  expect(answer.contentType).toStartWith("application/problem+json");
}

/**
 * The node's warn line for the request of `answer`, once it logged one. The creation's transaction writes it when it
 * resumes after the lock is let go (its record fails, the rollback's answer comes back), which on a loaded machine
 * may be later than the 300 ms pause: wait for it.
 */
async function warnedFor(answer: Answer): Promise<Record<string, unknown> | undefined> {
  let warned: Record<string, unknown> | undefined;
  await eventually(() => {
    warned = node.lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.msg === "admin event not recorded" && line.request_id === answer.requestId);
    return warned !== undefined;
  }, "the warn line of the rolled-back grant");
  return warned;
}

async function keysOf(sub: string): Promise<string[]> {
  const rows = await node.sql<{ id: string }[]>`SELECT id FROM edgewise_api_keys WHERE sub = ${sub}`;
  return rows.map((row) => row.id);
}

async function subscriptionsTo(url: string): Promise<string[]> {
  const rows = await node.sql<{ id: string }[]>`SELECT id FROM webhook_subscriptions WHERE url = ${url}`;
  return rows.map((row) => row.id);
}

const createKey = async (sub: string) =>
  call(node, "POST", "/v1/api-keys", await token(node, "root"), { sub, scopes: ["admin"] });

const subscribe = async (url: string) =>
  call(node, "POST", "/v1/webhooks/subscriptions", await token(node, "root"), {
    url,
    events: ["order.confirmed"],
  });

test("an API key waiting on its table past the timeout is answered 504 and never exists", async () => {
  const sub = uniqueName("deadline-key");
  const { answer, records } = await createPastDeadline(lockKeys, () => createKey(sub));
  expectTimedOut(answer);
  expect(JSON.stringify(answer.body)).not.toContain("ew_");
  expect(await keysOf(sub)).toEqual([]);
  expect(records).toEqual([]);
  // Nothing stands in the way of the retry.
  expect((await createKey(sub)).status).toBe(201);
  expect(await keysOf(sub)).toHaveLength(1);
}, 30_000);

test("an API key whose record waits on the activity log past the timeout is rolled back, as its warn line says", async () => {
  const sub = uniqueName("deadline-key-log");
  const { answer, records } = await createPastDeadline(lockLog, () => createKey(sub));
  expectTimedOut(answer);
  expect(await keysOf(sub)).toEqual([]);
  expect(records).toEqual([]);
  expect(await warnedFor(answer)).toMatchObject({ action: "api_key_created", action_rolled_back: true });
}, 30_000);

test("a subscription waiting on its table past the timeout is answered 504 and never exists", async () => {
  const url = `http://127.0.0.1:9/${uniqueName("deadline-hook")}`;
  const { answer, records } = await createPastDeadline(lockSubscriptions, () => subscribe(url));
  expectTimedOut(answer);
  expect(JSON.stringify(answer.body)).not.toContain("whsec_");
  expect(await subscriptionsTo(url)).toEqual([]);
  expect(records).toEqual([]);
  expect((await subscribe(url)).status).toBe(201);
  expect(await subscriptionsTo(url)).toHaveLength(1);
}, 30_000);

test("a subscription whose record waits on the activity log past the timeout is rolled back, as its warn line says", async () => {
  const url = `http://127.0.0.1:9/${uniqueName("deadline-hook-log")}`;
  const { answer, records } = await createPastDeadline(lockLog, () => subscribe(url));
  expectTimedOut(answer);
  expect(await subscriptionsTo(url)).toEqual([]);
  expect(records).toEqual([]);
  expect(await warnedFor(answer)).toMatchObject({
    action: "webhook_subscription_created",
    action_rolled_back: true,
  });
}, 30_000);
