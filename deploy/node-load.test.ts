// The node's load sampler and admission control on a real broker: an episode of refusals is logged once at its start
// (warn) and once at its end (info), not once a request.
import { afterAll, expect, test } from "bun:test";
import { Hono } from "hono";
import { errorHandler } from "../edge/errors.ts";
import type { GatewayEnv } from "../edge/env.ts";
import { parseConfig } from "../shared/config/index.ts";
import { createLogger } from "../shared/telemetry/log/index.ts";
import { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import {
  call,
  createSchema,
  dropSchema,
  startReceiver,
  startTestBroker,
  uniqueSchema,
  waitFor,
} from "../test/broker/helpers.ts";
import { nodeLoad } from "./node-load.ts";
import type { NodeOptions } from "./node-options.ts";
import type { Stop } from "./node-stop.ts";

const schema = uniqueSchema("node_load");
const receiver = startReceiver();
afterAll(async () => {
  receiver.stop();
  await dropSchema(schema);
});

type LogLine = { level: string; msg: string } & Record<string, unknown>;

test("refusing new orders is logged once at warn when it starts and once at info when the broker has caught up", async () => {
  await createSchema(schema);
  const broker = await startTestBroker(schema);
  const stops: Stop[] = [];
  try {
    // The broker holds a message due and not delivered: it falls behind.
    await broker.pauseDeliveries();
    const published = await call(broker, `/v2/publish/${receiver.url()}`, { method: "POST", body: "work" });
    expect(published.status).toBe(201);
    const { messageId } = published.body as { messageId: string };

    const lines: LogLine[] = [];
    const logger = createLogger({ level: "info", sink: (line) => lines.push(JSON.parse(line) as LogLine) });
    const options = { config: parseConfig({ EDGEWISE_MAX_QUEUE_DELAY: "300ms" }) } as NodeOptions;
    const load = nodeLoad({ options, brokerSql: broker.sql, metrics: new EdgewiseMetrics(), logger, stops });
    const app = new Hono<GatewayEnv>();
    app.onError(errorHandler({ logger }));
    if (load.admission) app.use(load.admission);
    app.post("/v1/orders", (c) => c.json({ status: "pending" }, 202));
    const place = async () => (await app.request("/v1/orders", { method: "POST" })).status;

    await waitFor(() => load.load.behindMs() > 300, 5_000, "the broker to be 300 ms behind");
    expect([await place(), await place(), await place()]).toEqual([503, 503, 503]);
    const refusing = lines.filter((line) => line.msg.startsWith("admission: refusing new orders"));
    expect(refusing).toHaveLength(1);
    expect(refusing[0]).toMatchObject({ level: "warn", limit_ms: 300 });
    expect(refusing[0]?.behind_ms as number).toBeGreaterThan(300);

    // Nothing due any more (the message is gone): the next sample ends the episode, and orders are taken again.
    expect((await call(broker, `/v2/messages/${messageId}`, { method: "DELETE" })).status).toBeLessThan(300);
    await waitFor(() => load.load.behindMs() === 0, 5_000, "the broker to catch up");
    expect(await place()).toBe(202);
    const resumed = lines.filter((line) => line.msg.startsWith("admission: taking new orders again"));
    expect(resumed).toEqual([expect.objectContaining({ level: "info", refused: 3 })]);
    expect(lines.filter((line) => line.msg.startsWith("admission: refusing new orders"))).toHaveLength(1);
  } finally {
    for (const stop of stops) await stop();
    await broker.stop();
  }
}, 30_000);
