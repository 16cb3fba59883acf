// Postgres cut under a real node (a fault proxy resetting its connections): the 503 `unavailable` says Retry-After.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { generateApiKey } from "../../edge/middleware/auth/api-keys.ts";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "../chaos/fault-proxy.ts";
import type { CommerceNode } from "../commerce/bun-node.ts";
import { uniqueName } from "../commerce/client.ts";
import { type AuditedNode, startAuditedNode, token } from "../security/admin-events-cases.ts";

const POSTGRES = { host: "127.0.0.1", port: 5432 };
let proxy: FaultProxy;
let running: CommerceNode;
let node: AuditedNode;

beforeAll(async () => {
  proxy = await startFaultProxy({ target: POSTGRES });
  ({ running, node } = await startAuditedNode("pg_outage_retry", { DATABASE_URL: proxiedUrl(proxy) }));
}, 60_000);
afterAll(async () => {
  proxy?.setMode(Modes.pass);
  await running?.stop();
  await proxy?.close();
}, 30_000);

test("a call that meets Postgres's connections reset, its breaker still closed, is 503 unavailable with Retry-After: 1", async () => {
  const root = { authorization: `Bearer ${await token(node, "root")}` };
  const customerId = uniqueName("outage-account");
  const set = await fetch(`${node.url}/v1/accounts/${customerId}`, {
    method: "PUT",
    headers: { ...root, "content-type": "application/json" },
    body: JSON.stringify({ balanceCents: 100 }),
  });
  expect(set.status).toBe(200);
  const { id, secretHash } = await generateApiKey();
  await node.sql`
    INSERT INTO edgewise_api_keys (id, secret_sha256, sub, scopes) VALUES (${id}, ${secretHash}, 'outage', 'orders:read')`;

  proxy.setMode(Modes.reset);
  // The ledger's own `unavailable` around the reset, and a revocation's call that meets it unwrapped.
  const answers = [
    await fetch(`${node.url}/v1/accounts/${customerId}`, { headers: root }),
    await fetch(`${node.url}/v1/api-keys/${id}`, { method: "DELETE", headers: root }),
  ];
  const seen = await Promise.all(
    answers.map(async (answer) => {
      const body = (await answer.json()) as { code?: string; detail?: string };
      return {
        status: answer.status,
        code: body.code,
        detail: body.detail,
        retryAfter: answer.headers.get("retry-after"),
      };
    }),
  );
  // Not the breaker's own 503 (`breaker.open`, which has always said Retry-After): each call met the outage. Before,
  // no Retry-After: a client had no hint when to come back, unlike after a breaker's 503 or a transient refusal.
  expect(seen).toEqual([
    { status: 503, code: "unavailable", detail: "the billing ledger is unavailable; retry", retryAfter: "1" },
    { status: 503, code: "unavailable", detail: "Postgres is unavailable; retry", retryAfter: "1" },
  ]);
  proxy.setMode(Modes.pass);
}, 60_000);
