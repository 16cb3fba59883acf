// The QStash transport against the real broker: QSTASH_DEV in the environment does not redirect what it publishes.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import {
  dropSchema,
  startReceiver,
  startTestBroker,
  uniqueSchema,
  waitFor,
} from "../../test/broker/helpers.ts";
import { QStashTransport } from "./qstash-transport.ts";

const schema = uniqueSchema("transport_dev");
let broker: Broker;
const receiver = startReceiver();
/** Stands where the SDK's dev mode would publish instead (127.0.0.1:QSTASH_DEV_PORT), and records what arrives. */
const decoy: string[] = [];
const decoyServer = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(request) {
    decoy.push(`${request.method} ${new URL(request.url).pathname}`);
    return Response.json({ messageId: "msg_decoy" });
  },
});

beforeAll(async () => {
  broker = await startTestBroker(schema);
});
afterAll(async () => {
  await broker.stop();
  receiver.stop();
  decoyServer.stop(true);
  await dropSchema(schema);
});

test("with QSTASH_DEV=1 in the environment, messages still go to the configured broker with its token", async () => {
  // Left to itself, the SDK's Client follows QSTASH_DEV: it ignores its URL and token and publishes to `qstash dev`
  // on QSTASH_DEV_PORT, downloading that binary first when nothing listens there.
  const saved = { dev: process.env.QSTASH_DEV, port: process.env.QSTASH_DEV_PORT };
  process.env.QSTASH_DEV = "1";
  process.env.QSTASH_DEV_PORT = String(decoyServer.port);
  try {
    const transport = new QStashTransport({
      baseUrl: broker.url,
      token: broker.token,
      deliveryUrl: () => receiver.url("/deliver"),
    });
    const envelope = createEnvelope({
      type: "Ping",
      source: "edgewise://test",
      target: "counter/dev",
      data: {},
    });
    await transport.send([envelope]);
    await waitFor(() => receiver.deliveries.length === 1, 5_000, "the delivery");
    expect(JSON.parse(receiver.deliveries[0]?.body ?? "{}")).toMatchObject({ id: envelope.id });
    expect(decoy).toEqual([]);
  } finally {
    for (const [name, value] of [
      ["QSTASH_DEV", saved.dev],
      ["QSTASH_DEV_PORT", saved.port],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});
