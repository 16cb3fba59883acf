// Messaging faults on the Bun host, against the real broker and the real Postgres: a consumer node that is
// down, poison messages and dead-letter replay, a broker SIGKILLed mid-stream, and repeated deliveries.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@upstash/qstash";
import { deliveryPath } from "../../actors/queue/qstash-transport.ts";
import type { AnyActorDefinition } from "../../actors/runtime/index.ts";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN } from "../../deploy/local/broker/index.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { dropSchema, startTestBroker, TEST_DATABASE_URL, uniqueSchema, waitFor } from "../broker/helpers.ts";
import { counter } from "../conformance/fixtures.ts";
import { restartablePort } from "../support/ports.ts";
import { forwarder, ghost } from "./faults-fixtures.ts";

const root = resolve(import.meta.dir, "../..");
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface NodeSpec {
  brokerUrl: string;
  port: number;
  actors: AnyActorDefinition[];
  dataDir?: string;
  /** Deliver everything to this node instead of the node itself (a producer with a separate consumer). */
  consumerUrl?: string;
}

async function node(spec: NodeSpec): Promise<EdgewiseNode> {
  const config = parseConfig({
    HOST: "127.0.0.1",
    PORT: String(spec.port),
    EDGEWISE_DATA_DIR: spec.dataDir ?? mkdtempSync(join(tmpdir(), "edgewise-msg-")),
    QSTASH_URL: spec.brokerUrl,
    QSTASH_TOKEN: DEV_TOKEN,
    QSTASH_CURRENT_SIGNING_KEY: DEV_CURRENT_SIGNING_KEY,
    QSTASH_NEXT_SIGNING_KEY: DEV_NEXT_SIGNING_KEY,
    EDGEWISE_DELIVERY_RETRIES: "6",
    DATABASE_URL: TEST_DATABASE_URL,
  });
  const schema = uniqueSchema("node");
  cleanups.push(() => dropSchema(schema));
  const started = await startNode({
    config,
    schema,
    actors: spec.actors,
    log: () => {},
    ...(spec.consumerUrl ? { deliveryUrl: (target) => `${spec.consumerUrl}${deliveryPath(target)}` } : {}),
  });
  cleanups.push(() => started.stop());
  return started;
}

const stateOf = (n: EdgewiseNode, type: string, key: string) => n.host!.inspect({ type, key });

describe("messaging faults (Bun host, real broker, real Postgres)", () => {
  // At time scale 0.0002 QStash's backoff tries at 0, 2 ms, 30 ms and 0.4 s, then 4.8 s and 22 s: down for 3 s, the
  // consumer misses four attempts (over 4 h of real backoff) and the fifth or the sixth finds it back. (It was 20 s
  // down at 0.001, where the fifth came at 24 s: the same four misses, waited out five times slower.)
  test("a consumer that is down past four attempts gets every message once it is back", async () => {
    const schema = uniqueSchema("consumer_down");
    cleanups.push(() => dropSchema(schema));
    const broker = await startTestBroker(schema, { timeScale: 0.0002 });
    cleanups.push(() => broker.stop());
    // The consumer starts on it 20 s later: a port checked free, outside the ephemeral range.
    const consumerPort = restartablePort();
    const consumerUrl = `http://127.0.0.1:${consumerPort}`;
    const producer = await node({
      brokerUrl: broker.url,
      port: restartablePort(),
      actors: [counter],
      consumerUrl,
    });
    await producer.host!.ask({ type: "counter", key: "p1" }, "SendTo", { key: "c1", count: 20 });
    await waitFor(() => stateOf(producer, "counter", "p1").outboxSize === 0, 5_000, "relay to the broker");
    const downSince = Date.now();
    await Bun.sleep(3_000);
    const consumer = await node({ brokerUrl: broker.url, port: consumerPort, actors: [counter] });
    await waitFor(() => stateOf(consumer, "counter", "c1").inboxSize === 20, 30_000, "all 20 delivered");
    expect(Date.now() - downSince).toBeGreaterThanOrEqual(3_000);
    expect(stateOf(consumer, "counter", "c1").state).toMatchObject({ count: (20 * 21) / 2 });
  }, 70_000);

  test("a poison message goes to the dead-letter queue at once; a replay after the fix delivers it once", async () => {
    const schema = uniqueSchema("poison");
    cleanups.push(() => dropSchema(schema));
    const broker = await startTestBroker(schema);
    cleanups.push(() => broker.stop());
    const port = restartablePort(); // the fixed node restarts on it
    const dataDir = mkdtempSync(join(tmpdir(), "edgewise-msg-"));
    const before = await node({ brokerUrl: broker.url, port, dataDir, actors: [forwarder] });
    await before.host!.ask({ type: "forwarder", key: "f" }, "Forward", {
      type: "ghost",
      key: "g1",
      message: "Hit",
      count: 1,
    });
    const client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
    await waitFor(async () => (await client.dlq.listMessages()).messages.length === 1, 10_000, "dead letter");
    const [dead] = (await client.dlq.listMessages()).messages;
    expect(dead?.responseStatus).toBe(489);
    expect(
      dead?.responseHeader?.["Upstash-Nonretryable-Error"] ??
        dead?.responseHeader?.["upstash-nonretryable-error"],
    ).toEqual(["true"]);
    const attempts = (await client.logs({ filter: { messageId: dead?.messageId as string } })).logs.filter(
      (log) => log.state === "ACTIVE",
    );
    expect(attempts).toHaveLength(1);

    await before.stop();
    const after = await node({ brokerUrl: broker.url, port, dataDir, actors: [forwarder, ghost] });
    await client.dlq.retry(dead?.dlqId as string);
    await waitFor(() => stateOf(after, "ghost", "g1").inboxSize === 1, 10_000, "replayed delivery");
    await Bun.sleep(300);
    expect(stateOf(after, "ghost", "g1").state).toEqual({ hits: 1 });
    expect((await client.dlq.listMessages()).messages).toHaveLength(0);
  }, 30_000);

  test("the same message delivered three times is applied once", async () => {
    const schema = uniqueSchema("thrice");
    cleanups.push(() => dropSchema(schema));
    const broker = await startTestBroker(schema);
    cleanups.push(() => broker.stop());
    const consumer = await node({ brokerUrl: broker.url, port: restartablePort(), actors: [counter] });
    const envelope = createEnvelope({
      type: "Increment",
      source: "edgewise://test",
      target: "counter/thrice",
      data: { by: 7 },
    });
    const client = new Client({ baseUrl: broker.url, token: broker.token, retry: false });
    for (let i = 0; i < 3; i++) {
      await client.publish({
        url: `${consumer.publicUrl}${deliveryPath({ type: "counter", key: "thrice" })}`,
        body: JSON.stringify(envelope),
      });
    }
    await waitFor(
      async () => (await client.logs({ filter: { state: "DELIVERED" } })).logs.length >= 3,
      10_000,
      "three deliveries",
    );
    expect(stateOf(consumer, "counter", "thrice")).toMatchObject({ state: { count: 7 }, inboxSize: 1 });
  }, 30_000);

  test("the broker SIGKILLed mid-stream and restarted loses nothing and applies nothing twice", async () => {
    const schema = uniqueSchema("broker_crash");
    cleanups.push(() => dropSchema(schema));
    const brokerPort = restartablePort(); // the broker restarts on it after the SIGKILL
    const brokerUrl = `http://127.0.0.1:${brokerPort}`;
    const startBrokerProcess = async () => {
      const child = Bun.spawn([process.execPath, join(root, "deploy/local/broker/main.ts")], {
        cwd: root,
        env: {
          ...process.env,
          DATABASE_URL: TEST_DATABASE_URL,
          QSTASH_DB_SCHEMA: schema,
          QSTASH_PORT: String(brokerPort),
          QSTASH_TIME_SCALE: "0.001",
          QSTASH_DELIVERY_CONCURRENCY: "8",
        },
        stdout: "ignore",
        stderr: "ignore",
      });
      cleanups.push(() => child.kill("SIGKILL"));
      await waitFor(
        () =>
          fetch(`${brokerUrl}/v2/keys`, { headers: { authorization: `Bearer ${DEV_TOKEN}` } }).then(
            (r) => r.ok,
            () => false,
          ),
        15_000,
        "broker up",
      );
      return child;
    };
    const first = await startBrokerProcess();
    const app = await node({ brokerUrl, port: restartablePort(), actors: [counter] });
    const total = 300;
    for (let i = 0; i < 3; i++)
      await app.host!.ask({ type: "counter", key: "src" }, "SendTo", { key: "dst", count: 100 });
    await waitFor(() => stateOf(app, "counter", "dst").inboxSize >= 40, 15_000, "deliveries under way");
    first.kill("SIGKILL");
    await first.exited;
    const cut = stateOf(app, "counter", "dst").inboxSize;
    await Bun.sleep(500);
    await startBrokerProcess();
    await waitFor(
      () => stateOf(app, "counter", "dst").inboxSize === total,
      30_000,
      "every message after restart",
    );
    expect(cut).toBeLessThan(total);
    const sum = 3 * ((100 * 101) / 2);
    await Bun.sleep(500);
    expect(stateOf(app, "counter", "dst")).toMatchObject({ state: { count: sum }, inboxSize: total });
    // The relay removes a message from the outbox once the broker has taken it, which a delivery can overtake on a
    // loaded machine: waited for, as the other tests here do.
    await waitFor(
      () => stateOf(app, "counter", "src").outboxSize === 0,
      10_000,
      "the relay's outbox to drain",
    );
  }, 60_000);
});
