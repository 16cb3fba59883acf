// A gateway beside its actor host on one database and one queue: what the gateway publishes reaches the actor host.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { Webhook } from "standardwebhooks";
import { generateSecret } from "../../actors/commerce/webhooks/index.ts";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY } from "../../deploy/local/broker/config.ts";
import { startReceiver, TEST_DATABASE_URL } from "../broker/helpers.ts";
import { edgewiseRejection } from "../support/errors.ts";
import { type CommerceNode, startCommerceGateway, startCommerceNode } from "./bun-node.ts";
import { type CommerceClient, eventually, uniqueName } from "./client.ts";

const actorHostSecret = crypto.randomUUID() + crypto.randomUUID();
const supplierSecret = generateSecret();
const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
let actorHost: CommerceNode;
let gateway: CommerceNode;
let client: CommerceClient;

beforeAll(async () => {
  actorHost = await startCommerceNode("split_gateway", {
    ACTOR_HOST_SECRET: actorHostSecret,
    INBOUND_WEBHOOK_SECRETS: `supplier=${supplierSecret}`,
  });
  gateway = await startCommerceGateway(actorHost, actorHostSecret, {
    INBOUND_WEBHOOK_SECRETS: `supplier=${supplierSecret}`,
  });
  client = gateway.client;
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await actorHost?.stop();
  await sql.end();
});

/** Messages the queue was ever given for a destination on this origin (its event log keeps every one). */
const queuedFor = async (origin: string) => {
  const [row] = await sql.unsafe(
    `SELECT count(*)::int AS n FROM "${actorHost.schema}".qstash_events WHERE url LIKE $1`,
    [`${origin}/%`],
  );
  return (row?.n as number) ?? 0;
};

/** A supplier's signed `inventory.restocked` for `sku`, posted to a gateway. */
function restock(at: CommerceNode, sku: string, quantity: number): Promise<Response> {
  const body = JSON.stringify({ type: "inventory.restocked", sku, quantity });
  const id = uniqueName("msg");
  return fetch(`${at.node.url}/webhooks/inbound/supplier`, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
      "webhook-signature": new Webhook(supplierSecret).sign(id, new Date(), body),
    },
  });
}

test("a supplier's restock through the gateway reaches the sku on the actor host", async () => {
  const sku = uniqueName("split-restock");
  await client.putSku(sku, 2, 100);
  expect((await restock(gateway, sku, 5)).status).toBe(202);
  // Before, the gateway addressed the command to its own URL, which serves no delivery endpoint: 404, retries,
  // then a dead letter, and the stock never came.
  await eventually(async () => (await client.sku(sku)).available === 7, "the restock on the actor host");
  expect(await queuedFor(gateway.node.url)).toBe(0);
});

test("ACTOR_HOST_PUBLIC_URL: where the queue reaches the actor host, when that is not ACTOR_HOST_URL", async () => {
  // Stands where the actor host's public address would be, and records what the queue delivers there.
  const publicSide = startReceiver(() => new Response("ok"));
  const other = await startCommerceGateway(actorHost, actorHostSecret, {
    INBOUND_WEBHOOK_SECRETS: `supplier=${supplierSecret}`,
    ACTOR_HOST_PUBLIC_URL: publicSide.url(""),
  });
  try {
    const sku = uniqueName("public-restock");
    expect((await restock(other, sku, 3)).status).toBe(202);
    await eventually(() => publicSide.deliveries.length === 1, "the restock at ACTOR_HOST_PUBLIC_URL");
    expect(publicSide.deliveries[0]?.path).toBe(`/_edgewise/deliver/inventory/${sku}`);
  } finally {
    await other.stop();
    publicSide.stop();
  }
});

test("an order placed through the gateway confirms; billing's replies go to the actor host", async () => {
  const sku = uniqueName("split-sku");
  const customer = uniqueName("split-cust");
  await client.putSku(sku, 10, 250);
  await client.putAccount(customer, 10_000);
  const placed = await client.place(customer, [{ sku, quantity: 2 }]);
  expect(placed.status).toBe(202);
  expect((await client.settle(placed.body.orderId)).status).toBe("confirmed");
  expect(await queuedFor(gateway.node.url)).toBe(0);
});

test("a gateway on every interface with npm run broker's public keys is not warned about deliveries: it serves none", async () => {
  // README's split deployment as written: HOST unset (0.0.0.0) and the qstash dev keys npm run broker prints. The
  // actor host rightly warns that anyone reaching it could sign a delivery; the gateway has no delivery endpoint
  // (its queue delivers to the actor host), so the same warning there was false.
  const lines: string[] = [];
  const exposed = await startCommerceGateway(
    actorHost,
    actorHostSecret,
    {
      HOST: "0.0.0.0",
      LOG_LEVEL: "debug",
      QSTASH_CURRENT_SIGNING_KEY: DEV_CURRENT_SIGNING_KEY,
      QSTASH_NEXT_SIGNING_KEY: DEV_NEXT_SIGNING_KEY,
    },
    { log: (line) => lines.push(line) },
  );
  try {
    const probe = await fetch(`${exposed.node.url}/_edgewise/deliver/counter/k`, {
      method: "POST",
      body: "{}",
    });
    expect(probe.status).toBe(404);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((line) => line.includes("public signing keys"))).toEqual([]);
  } finally {
    await exposed.stop();
  }
});

test("a gateway without its actor host's database or queue is refused at start, naming what is missing", async () => {
  for (const missing of ["QSTASH_URL", "DATABASE_URL"]) {
    const unset =
      missing === "QSTASH_URL"
        ? {
            QSTASH_URL: undefined,
            QSTASH_TOKEN: undefined,
            QSTASH_CURRENT_SIGNING_KEY: undefined,
            QSTASH_NEXT_SIGNING_KEY: undefined,
          }
        : { DATABASE_URL: undefined };
    const error = await edgewiseRejection(startCommerceGateway(actorHost, actorHostSecret, unset));
    expect(error.code).toBe("config.invalid");
    expect(error.message).toContain(`set ${missing}`);
  }
});

test("a gateway leaves billing's outbox to the actor host, which hosts billing", async () => {
  // The actor host stops; a reply left in billing's outbox must wait for it, not be taken by the gateway (which
  // would send it from its own node and, before, to its own URL).
  await actorHost.node.stop();
  const envelope = { id: uniqueName("reply"), type: "PaymentCaptured", target: "order/none", data: {} };
  const [row] = await sql.unsafe(
    `INSERT INTO "${actorHost.schema}".billing_outbox (envelope) VALUES ($1::jsonb)
     RETURNING seq, available_at`,
    [JSON.stringify(envelope)],
  );
  await Bun.sleep(2_500); // more than two of a relay's 1 s polls
  const [after] = await sql.unsafe(
    `SELECT attempts, available_at FROM "${actorHost.schema}".billing_outbox WHERE seq = $1`,
    [row?.seq],
  );
  expect(after).toMatchObject({ attempts: 0, available_at: row?.available_at });
}, 20_000);
