// Admin actions on a Bun node with the real Postgres: recorded as admin.* in the activity log (admin-events-suite.ts,
// where a revocation whose record fails stands, warned and counted), and a balance set whose record fails is rolled
// back with it, logged at warn and counted.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { adminActions } from "../../edge/audit/admin-events.ts";
import type { CommerceNode } from "../commerce/bun-node.ts";
import { eventually, uniqueName } from "../commerce/client.ts";
import {
  adminEventsAfter,
  type AuditedNode,
  call,
  lastSeq,
  refuseAccountRecords,
  startAuditedNode,
  token,
} from "./admin-events-cases.ts";
import { adminAuditTests } from "./admin-events-suite.ts";

let running: CommerceNode;
let audited: AuditedNode;

beforeAll(async () => {
  ({ running, node: audited } = await startAuditedNode("admin_events", { EDGEWISE_DELIVERY_RETRIES: "0" }));
}, 60_000);
afterAll(() => running?.stop());

adminAuditTests(() => audited);

test("when the record fails, the balance set is rolled back with it: a warn line and edgewise_admin_events_total{outcome=failed}", async () => {
  const root = await token(audited, "root");
  const customerId = uniqueName("audit-fail");
  const failedBefore = await failedAccountSets();
  const before = await lastSeq(audited.sql);
  // The log made to refuse this customer's record (a real failure of the real table, not a stand-in).
  const allow = await refuseAccountRecords(audited.sql, customerId);
  let answer: Awaited<ReturnType<typeof call>>;
  try {
    answer = await call(audited, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 500 });
  } finally {
    await allow();
  }
  expect(answer.status).toBe(503);
  expect(answer.contentType).toStartWith("application/problem+json");
  // The account was new: rolled back with the set, it does not exist.
  expect((await call(audited, "GET", `/v1/accounts/${customerId}`, root)).status).toBe(404);
  expect(await adminEventsAfter(audited.sql, before)).toEqual([]);
  const warned = audited.lines
    .map((line) => JSON.parse(line))
    .find((l) => l.msg === "admin event not recorded" && l.request_id === answer.requestId);
  expect(warned).toMatchObject({
    level: "warn",
    action: "account_set",
    request_id: answer.requestId,
    action_rolled_back: true,
  });
  expect(JSON.stringify(warned)).not.toContain(root);
  // Once the log takes it again, the set is made and recorded.
  expect((await call(audited, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 600 })).status).toBe(
    200,
  );
  expect((await adminEventsAfter(audited.sql, before)).map((e) => e.type)).toEqual(["admin.account_set"]);
  // /metrics may serve its last render for a moment: wait for one made after the failure.
  await eventually(async () => (await failedAccountSets()) === failedBefore + 1, "the failed record counted");
  expect((await accountSetSeries()).some((line) => /outcome="recorded"\} [1-9]/.test(line))).toBe(true);
}, 30_000);

/** The node's `edgewise_admin_events_total` series for account_set, from /metrics. */
async function accountSetSeries(): Promise<string[]> {
  return (await (await fetch(`${audited.url}/metrics`)).text())
    .split("\n")
    .filter((line) => line.startsWith('edgewise_admin_events_total{action="account_set"'));
}

/** How many account_set records failed so far (the shared suite makes one fail too). */
async function failedAccountSets(): Promise<number> {
  const line = (await accountSetSeries()).find((series) => series.includes('outcome="failed"'));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

test("/openapi.json's GET /v1/activity names every admin event type", async () => {
  const spec = (await (await fetch(`${audited.url}/openapi.json`)).json()) as {
    paths: Record<string, { get?: { description?: string } }>;
  };
  const description = spec.paths["/v1/activity"]?.get?.description ?? "";
  for (const action of adminActions) expect(description).toContain(`admin.${action}`);
});
