// Test support (tests only, Bun): a Postgres schema per file, a recording transport, a local receiver.
import { connect } from "../../../deploy/local/broker/db.ts";
import { createEnvelope, type Envelope } from "../../../shared/envelope/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../../../test/broker/helpers.ts";
import type { Transport } from "../../runtime/transport.ts";
import { PostgresWebhookStore } from "./postgres-store.ts";

/** A migrated store on its own schema of the test database; `close` drops the schema. */
export async function testStore(name: string) {
  const schema = uniqueSchema(`webhooks_${name}`);
  const sql = await connect({ url: TEST_DATABASE_URL, max: 2, schema });
  const store = new PostgresWebhookStore(sql);
  await store.migrate();
  return {
    sql,
    store,
    close: async () => {
      await sql.end();
      await dropSchema(schema);
    },
  };
}

/** Records what is sent; `failNext` makes the next send reject, as a broker outage would. */
export function recordingTransport() {
  const sent: Envelope[] = [];
  const transport = {
    sent,
    failNext: undefined as Error | undefined,
    async send(envelopes: Envelope[]) {
      const failure = transport.failNext;
      transport.failNext = undefined;
      if (failure) throw failure;
      sent.push(...structuredClone(envelopes));
    },
  } satisfies Transport & Record<string, unknown>;
  return transport;
}

export interface Hit {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** An HTTP receiver on 127.0.0.1 that records every request and answers with `respond` (default 204). */
export function startHookReceiver(
  respond: (hit: Hit, nth: number) => Response | Promise<Response> = () =>
    new Response(null, { status: 204 }),
) {
  const hits: Hit[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const hit = {
        path: new URL(request.url).pathname,
        headers: Object.fromEntries(request.headers),
        body: await request.text(),
      };
      hits.push(hit);
      return respond(hit, hits.filter((other) => other.path === hit.path).length);
    },
  });
  return {
    hits,
    port: server.port,
    url: (path: string) => `http://127.0.0.1:${server.port}${path}`,
    at: (path: string) => hits.filter((hit) => hit.path === path),
    stop: () => server.stop(true),
  };
}

/** An order's OrderConfirmed as webhooks/outbound receives it: one line, 1,000 cents. */
export const confirmedEvent = (orderId: string): Envelope =>
  createEnvelope({
    type: "OrderConfirmed",
    source: "edgewise://order",
    data: {
      orderId,
      version: 3,
      customerId: "c1",
      items: [{ sku: "sku-1", quantity: 2, unitPriceCents: 500 }],
      totalCents: 1000,
    },
    target: "webhooks/outbound",
  });
