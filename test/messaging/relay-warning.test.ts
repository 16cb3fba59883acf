// A relay pass the broker refuses is reported with the messages it holds back: their ids (the first ten, and a
// count) and their actors, for the actors' outbox and billing's. The real broker, its Postgres reset by a fault proxy,
// and a real Postgres for billing.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveWithNodeDns } from "../../actors/commerce/webhooks/dns-resolver.ts";
import { postWithNodeHttp } from "../../actors/commerce/webhooks/node-post.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { QStashTransport } from "../../actors/queue/qstash-transport.ts";
import { type ActorHost, formatAddress } from "../../actors/runtime/index.ts";
import { connect, type Sql } from "../../deploy/local/broker/db.ts";
import { commerceSystem } from "../../edge/commerce.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import { useBrokerBehindProxy } from "../broker/behind-proxy.ts";
import { dropSchema, startReceiver, TEST_DATABASE_URL, uniqueSchema, waitFor } from "../broker/helpers.ts";
import { Modes } from "../chaos/fault-proxy.ts";
import { counter } from "../conformance/fixtures.ts";

const fixture = useBrokerBehindProxy("relay_warning");
const receiver = startReceiver();
const dir = mkdtempSync(join(tmpdir(), "audit-relay-warning-"));
const schema = uniqueSchema("relay_warning_billing");
let sql: Sql;

interface Warning {
  what: string;
  error: unknown;
  fields: Record<string, unknown> | undefined;
}

beforeAll(async () => {
  sql = await connect({ url: TEST_DATABASE_URL, max: 2, schema });
});
afterAll(async () => {
  receiver.stop();
  rmSync(dir, { recursive: true, force: true });
  await sql?.end({ timeout: 1 });
  await dropSchema(schema);
});

const transport = () =>
  new QStashTransport({
    baseUrl: fixture.broker.url,
    token: fixture.broker.token,
    deliveryUrl: (target) => receiver.url(`/_edgewise/deliver/${target.type}/${target.key}`),
  });

/** The envelope ids the receiver got, once the broker delivers again. */
const deliveredIds = () =>
  new Set(receiver.deliveries.map((delivery) => (JSON.parse(delivery.body) as Envelope).id));

test("the actors' relay names the message ids and the actors whose outboxes hold them, bounded", async () => {
  const file = join(dir, "actors.db");
  const warnings: Warning[] = [];
  const host = new LocalActorHost({
    actors: [counter],
    db: openBunSqlite(file),
    transport: transport(),
    onBackgroundError: (what, error, fields) => warnings.push({ what, error, fields }),
  });
  try {
    await Bun.sleep(300); // not in the same instant as a query's answer (test/broker/health.test.ts)
    fixture.proxy.setMode(Modes.reset);
    // 12 actors with 2 messages each: 24 held back, more ids and actors than a warning names.
    for (let n = 0; n < 12; n++)
      await host.ask({ type: "counter", key: `w${n}` }, "SendTo", { key: "sink", count: 2 });
    const reader = new Database(file, { readonly: true });
    const outbox = reader.query("SELECT actor, envelope FROM outbox ORDER BY seq").all() as Array<{
      actor: string;
      envelope: string;
    }>;
    reader.close();
    const held = outbox.map((row) => ({ id: (JSON.parse(row.envelope) as Envelope).id, actor: row.actor }));
    expect(held).toHaveLength(24);

    await host.tick();
    expect(warnings).toHaveLength(1);
    const [warning] = warnings;
    expect(warning?.what).toBe("relay: 24 messages will be retried");
    expect(warning?.fields).toEqual({
      message_ids: held.slice(0, 10).map((message) => message.id),
      message_count: 24,
      actors: [...new Set(held.map((message) => message.actor))].slice(0, 10),
      actor_count: 12,
    });
    expect(warning?.fields?.actors).toContain("counter/w0");

    // The ids named are the messages' own: once the broker is back, the same ids are delivered.
    fixture.proxy.setMode(Modes.pass);
    await waitFor(
      async () => {
        await host.tick();
        return held.every((message) => deliveredIds().has(message.id));
      },
      15_000,
      "the held-back messages delivered",
    );
  } finally {
    fixture.proxy.setMode(Modes.pass);
    await host.stop();
  }
}, 30_000);

test("billing's relay logs the message ids and the actors they are addressed to, at warn", async () => {
  // Billing as a node composes it (edge/commerce.ts), its relay's failures going to the structured logger.
  const capture = captureSink();
  const system = commerceSystem({
    sql,
    transport: transport(),
    actors: {} as unknown as ActorHost,
    webhookPolicy: { resolve: resolveWithNodeDns, allowPrivate: true },
    webhookPost: postWithNodeHttp,
    inboundWebhookSecrets: undefined,
    logger: createLogger({ level: "info", sink: capture.sink }),
  });
  await system.migrate();
  // Billing's replies as the ledger writes them, one per order, into its outbox.
  const replies = Array.from({ length: 3 }, (_, n) =>
    createEnvelope({
      type: "PaymentCaptured",
      source: "edgewise://billing",
      target: formatAddress({ type: "order", key: `relay-warning-o${n}` }),
      data: { orderId: `relay-warning-o${n}` },
    }),
  );
  for (const reply of replies) {
    await sql`INSERT INTO billing_outbox (envelope) VALUES (${JSON.stringify(reply)}::text::jsonb)`;
  }
  await Bun.sleep(300);
  fixture.proxy.setMode(Modes.reset);
  system.relay.start();
  try {
    const warned = () => capture.records().filter((record) => record.level === "warn");
    await waitFor(() => warned().length > 0, 10_000, "billing's relay warning");
    expect(warned()[0]).toMatchObject({
      msg: "billing relay: 3 messages will be retried",
      message_ids: replies.map((reply) => reply.id),
      message_count: 3,
      actors: replies.map((reply) => reply.target),
      actor_count: 3,
      error: { message: expect.any(String) },
    });
    fixture.proxy.setMode(Modes.pass);
    await waitFor(
      () => replies.every((reply) => deliveredIds().has(reply.id)),
      15_000,
      "billing's replies delivered",
    );
  } finally {
    fixture.proxy.setMode(Modes.pass);
    await system.relay.stop();
  }
}, 30_000);
