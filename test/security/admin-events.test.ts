// Admin actions on a Bun node with the real Postgres: recorded as admin.* in the activity log (admin-events-suite.ts),
// and a failure to record one leaves the action standing, logged at warn and counted in /metrics.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { adminActions } from "../../edge/audit/admin-events.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { uniqueName } from "../commerce/client.ts";
import { type AuditedNode, adminEventsAfter, call, lastSeq, token } from "./admin-events-cases.ts";
import { adminAuditTests } from "./admin-events-suite.ts";

let running: CommerceNode;
let audited: AuditedNode;
const lines: string[] = [];

beforeAll(async () => {
  running = await startCommerceNode(
    "admin_events",
    { EDGEWISE_DELIVERY_RETRIES: "0", LOG_LEVEL: "warn" },
    { log: (line) => lines.push(line) },
  );
  audited = {
    url: running.node.url,
    sql: running.node.sql,
    jwtSecret: running.jwtSecret,
    brokerUrl: running.node.brokerUrl,
    brokerToken: running.node.broker?.token ?? "",
  };
}, 60_000);
afterAll(() => running?.stop());

adminAuditTests(() => audited);

test("when the record fails, the balance is still set: a warn line and edgewise_admin_events_total{outcome=failed}", async () => {
  const root = await token(audited, "root");
  const customerId = uniqueName("audit-fail");
  const before = await lastSeq(audited.sql);
  // The log made unwritable for a moment (a real failure of the real table, not a stand-in).
  await audited.sql`ALTER TABLE activity_log RENAME TO activity_log_away`;
  let answer: Awaited<ReturnType<typeof call>>;
  try {
    answer = await call(audited, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 500 });
  } finally {
    await audited.sql`ALTER TABLE activity_log_away RENAME TO activity_log`;
  }
  expect(answer.status).toBe(200);
  expect(answer.body).toEqual({ customerId, balanceCents: 500 });
  expect((await call(audited, "GET", `/v1/accounts/${customerId}`, root)).body.balanceCents).toBe(500);
  expect(await adminEventsAfter(audited.sql, before)).toEqual([]);
  const warned = lines.map((line) => JSON.parse(line)).find((l) => l.msg === "admin event not recorded");
  expect(warned).toMatchObject({ level: "warn", action: "account_set", request_id: answer.requestId });
  expect(JSON.stringify(warned)).not.toContain(root);
  // Once the log is back, the next one is recorded again.
  expect((await call(audited, "PUT", `/v1/accounts/${customerId}`, root, { balanceCents: 600 })).status).toBe(
    200,
  );
  expect((await adminEventsAfter(audited.sql, before)).map((e) => e.type)).toEqual(["admin.account_set"]);
  const metrics = (await (await fetch(`${audited.url}/metrics`)).text())
    .split("\n")
    .filter((line) => line.startsWith('edgewise_admin_events_total{action="account_set"'));
  expect(metrics).toContain('edgewise_admin_events_total{action="account_set",outcome="failed"} 1');
  expect(metrics.some((line) => /outcome="recorded"\} [1-9]/.test(line))).toBe(true);
}, 30_000);

test("/openapi.json's GET /v1/activity names every admin event type", async () => {
  const spec = (await (await fetch(`${audited.url}/openapi.json`)).json()) as {
    paths: Record<string, { get?: { description?: string } }>;
  };
  const description = spec.paths["/v1/activity"]?.get?.description ?? "";
  for (const action of adminActions) expect(description).toContain(`admin.${action}`);
});
