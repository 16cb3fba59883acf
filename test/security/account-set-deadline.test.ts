// A balance set and its admin.account_set record in one transaction, against other sessions holding its locks
// (real Postgres): past the caller's deadline (the `postgres` timeout, 3 s here) it is rolled back, not committed after the
// 504; and its record takes its place in the log (seq) last, so the console's live tail, which reads on from the
// highest seq it has shown, never steps over it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type postgres from "postgres";
import { SystemAccounts } from "../../actors/commerce/billing/schema.ts";
import type { CommerceNode } from "../commerce/bun-node.ts";
import { eventually, uniqueName } from "../commerce/client.ts";
import {
  type AuditedNode,
  adminEventsAfter,
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
    "account_deadline",
    {},
    { postgresTimeoutMs: deadlineTestTimeoutMs },
  ));
}, 60_000);
afterAll(() => running?.stop());

/** Sets the balance to 100, then to 999 while `lock` is held; returns the answer, and what stands once it is let go. */
async function setPastDeadline(customerId: string, lock: (tx: postgres.TransactionSql) => Promise<unknown>) {
  const root = await token(node, "root");
  expect((await call(node, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 100 })).status).toBe(
    200,
  );
  const before = await lastSeq(node.sql);
  const hold = await holdingPastDeadline(node.sql, lock);
  const answer = await call(node, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 999 });
  await hold.letGo();
  await Bun.sleep(300); // the set's own transaction goes on once the lock is let go
  const [journal] = await node.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM billing_transactions WHERE customer_id = ${customerId}`;
  return {
    answer,
    balance: (await call(node, "GET", `/v1/accounts/${customerId}`, root)).body.balanceCents,
    records: await adminEventsAfter(node.sql, before),
    journal: journal?.n,
  };
}

test("a set waiting on its account's row past the timeout is answered 504 and never commits", async () => {
  const customerId = uniqueName("deadline-row");
  const after = await setPastDeadline(
    customerId,
    (tx) => tx`SELECT 1 FROM billing_accounts WHERE id = ${customerId} FOR UPDATE`,
  );
  expect(after.answer.status).toBe(504);
  expect(after.answer.contentType).toStartWith("application/problem+json");
  expect(after.balance).toBe(100);
  expect(after.records).toEqual([]);
  expect(after.journal).toBe(1); // the first set's funding only
}, 30_000);

test("a set whose record waits on the activity log past the timeout is rolled back, as its warn line says", async () => {
  const customerId = uniqueName("deadline-log");
  const after = await setPastDeadline(
    customerId,
    (tx) => tx`LOCK TABLE activity_log IN SHARE ROW EXCLUSIVE MODE`,
  );
  expect(after.answer.status).toBe(504);
  expect(after.balance).toBe(100);
  expect(after.records).toEqual([]);
  expect(after.journal).toBe(1);
  // The set's transaction logs it once it resumes after the lock is let go (its record fails, the rollback's answer
  // comes back), which on a loaded machine may be later than the 300 ms pause: wait for it.
  let warned: Record<string, unknown> | undefined;
  await eventually(() => {
    warned = node.lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.msg === "admin event not recorded" && line.request_id === after.answer.requestId);
    return warned !== undefined;
  }, "the warn line of the rolled-back set");
  expect(warned).toMatchObject({ action: "account_set", action_rolled_back: true });
}, 30_000);

test("a set waiting on the funding account commits its record after what the log took meanwhile: the tail sees it", async () => {
  const root = await token(node, "root");
  const customerId = uniqueName("tail-set");
  const sku = uniqueName("tail-sku");
  expect((await call(node, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 100 })).status).toBe(
    200,
  );
  const shownBefore = await lastSeq(node.sql);
  // The funding account (which every balance set moves last) is held by another session for a second.
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let taken = () => {};
  const isTaken = new Promise<void>((resolve) => {
    taken = resolve;
  });
  const holding = node.sql.begin(async (tx) => {
    await tx`SELECT 1 FROM billing_accounts WHERE id = ${SystemAccounts.funding} FOR NO KEY UPDATE`;
    taken();
    await released;
  });
  await isTaken;
  const setting = call(node, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 999 });
  await Bun.sleep(300);
  // Meanwhile another admin action is recorded, and the live tail shows it and moves on past it.
  expect(
    (await call(node, "PUT", `/v1/inventory/${sku}`, root, { available: 1, priceCents: 1 })).status,
  ).toBe(200);
  const tail = (after: string) =>
    node.sql<{ seq: string; type: string; subject: string }[]>`
      SELECT seq::text, type, subject FROM activity_log WHERE seq > ${after}::bigint ORDER BY seq`;
  const shown = (await tail(shownBefore)).filter((row) => row.type.startsWith("admin."));
  expect(shown.map((row) => row.subject)).toEqual([sku]);
  release();
  await holding;
  expect((await setting).status).toBe(200);
  // The next read of the tail, from the last seq it showed, has the balance set's record.
  const next = await tail(shown.at(-1)?.seq ?? shownBefore);
  expect(next.filter((row) => row.type === "admin.account_set").map((row) => row.subject)).toEqual([
    customerId,
  ]);
}, 30_000);
