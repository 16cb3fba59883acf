// The node's load sampler and admission control on a real broker: an episode of refusals is logged once at its start
// (warn) and once at its end (info), not once a request.
import { afterAll, expect, test } from "bun:test";
import { Hono } from "hono";
import postgres from "postgres";
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
  TEST_DATABASE_URL,
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
    const { load, lines, place, messageId } = await admissionBehind(broker, stops);
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

/**
 * A node's admission over `broker` (limit 300 ms), once a message held there has waited past it: the load, its log
 * lines, a POST /v1/orders placed through admission (its status), and the held message's id.
 */
async function admissionBehind(broker: Awaited<ReturnType<typeof startTestBroker>>, stops: Stop[]) {
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
  return { load, lines, place, messageId };
}

test("a read of the broker that does not come back is not trusted: past 2 s the node takes orders, and says so once", async () => {
  const stuckSchema = uniqueSchema("node_load_stuck");
  await createSchema(stuckSchema);
  const broker = await startTestBroker(stuckSchema);
  const locker = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  const stops: Stop[] = [];
  let unlock = () => {};
  try {
    const { load, lines, place } = await admissionBehind(broker, stops);
    expect(await place()).toBe(503);

    // The broker's table is locked by another session (a migration, a VACUUM FULL, a wedged connection): the
    // sampler's next read waits, and the last value it read would stand for as long as that lasts.
    let locked = () => {};
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const released = new Promise<void>((resolve) => {
      unlock = resolve;
    });
    const holding = locker.begin(async (tx) => {
      await tx`LOCK TABLE ${tx(stuckSchema)}.qstash_messages IN ACCESS EXCLUSIVE MODE`;
      locked();
      await released;
    });
    await isLocked;
    const lockedAt = performance.now();
    // Within the bound, the last sample still counts; past it, the wait is unknown and new orders are taken, as when
    // the read fails: the outbox keeps what they publish until the broker answers.
    await waitFor(async () => (await place()) === 202, 5_000, "orders taken once the sample is stale");
    expect(performance.now() - lockedAt).toBeGreaterThan(1_500);
    expect(load.load.behindMs()).toBe(0);
    const stale = lines.filter((line) =>
      line.msg.startsWith("admission: the broker's backlog has not been read for 2 s; taking new orders"),
    );
    expect(stale).toEqual([expect.objectContaining({ level: "warn" })]);
    expect(lines.filter((line) => line.msg.startsWith("admission: taking new orders again"))).toEqual([
      expect.objectContaining({ level: "info", refused: expect.any(Number) }),
    ]);

    // The read comes back: the broker is still behind, and new orders are refused again.
    unlock();
    await holding;
    await waitFor(() => load.load.behindMs() > 300, 5_000, "the sample to be read again");
    expect(await place()).toBe(503);
  } finally {
    unlock();
    for (const stop of stops) await stop();
    await broker.stop();
    await locker.end();
    await dropSchema(stuckSchema);
  }
}, 30_000);

test("a broker whose reads have been slow (a busy database) is still refused from while a read is as slow", async () => {
  const slowSchema = uniqueSchema("node_load_slow");
  await createSchema(slowSchema);
  const broker = await startTestBroker(slowSchema);
  const locker = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  const stops: Stop[] = [];
  try {
    const { lines, place } = await admissionBehind(broker, stops);

    // The broker's database is busy: each read waits about 1.5 s for it, as on PGlite's one connection under load.
    const lockFor = (ms: number, during?: () => Promise<void>) =>
      locker.begin(async (tx) => {
        await tx`LOCK TABLE ${tx(slowSchema)}.qstash_messages IN ACCESS EXCLUSIVE MODE`;
        await Promise.all([Bun.sleep(ms), during?.()]);
      });
    for (let slow = 0; slow < 3; slow++) {
      await lockFor(1_500);
      await Bun.sleep(400); // the read that waited comes back, and the next one too
    }
    // A read 2.5 s late is no later than such reads are: the last value still stands, and new orders are refused.
    const answers: number[] = [];
    await lockFor(2_500, async () => {
      await Bun.sleep(100);
      while (answers.length < 11) {
        answers.push(await place());
        await Bun.sleep(200);
      }
    });
    expect(answers.filter((status) => status !== 503)).toEqual([]);
    expect(lines.filter((line) => line.msg.includes("has not been read"))).toEqual([]);
  } finally {
    for (const stop of stops) await stop();
    await broker.stop();
    await locker.end();
    await dropSchema(slowSchema);
  }
}, 30_000);
