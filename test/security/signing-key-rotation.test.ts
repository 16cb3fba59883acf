// Rotating the QStash signing keys under load, in the documented order: the broker moves to its next key while
// the actor host still holds (current, next); orders keep flowing, nothing is lost, dead-lettered or applied twice.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { jwtVerify } from "jose";
import { type Started, startProcess } from "../e2e/process.ts";
import { restartablePort } from "../support/ports.ts";
import {
  BROKER_TIME_SCALE,
  DEV_TOKEN,
  type InProcessNode,
  root,
  startInProcessNode,
  TEST_DATABASE_URL,
  uniqueSchema,
} from "../chaos/nodes.ts";
import { expectScenarioHeld, runFaultScenario } from "../chaos/scenario.ts";

const schema = uniqueSchema("signing_rotation");
// The broker restarts on it with the next keys: outside the ephemeral range, so no outgoing connection takes it.
const brokerPort = restartablePort();
const brokerUrl = `http://127.0.0.1:${brokerPort}`;
const keyA = `sig_${crypto.randomUUID().replaceAll("-", "")}`;
const keyB = `sig_${crypto.randomUUID().replaceAll("-", "")}`;
const keyC = `sig_${crypto.randomUUID().replaceAll("-", "")}`;
let broker: Started | undefined;
let running: InProcessNode | undefined;
afterAll(async () => {
  await running?.stop();
  await broker?.kill("SIGKILL");
}, 30_000);

const startBroker = (current: string, next: string) =>
  startProcess([process.execPath, join(root, "deploy/local/broker/main.ts")], {
    cwd: root,
    env: {
      DATABASE_URL: TEST_DATABASE_URL,
      QSTASH_DB_SCHEMA: schema,
      QSTASH_PORT: String(brokerPort),
      QSTASH_TIME_SCALE: String(BROKER_TIME_SCALE),
      QSTASH_TOKEN: DEV_TOKEN,
      QSTASH_CURRENT_SIGNING_KEY: current,
      QSTASH_NEXT_SIGNING_KEY: next,
    },
    pattern: /broker running at (\S+)/,
    timeoutMs: 30_000,
  });

test("step 1 of a signing-key rotation under load: the broker signs with its next key, the actor host still holding both; no delivery is refused", async () => {
  broker = await startBroker(keyA, keyB);
  running = await startInProcessNode(
    "signing_rotation",
    {
      QSTASH_URL: brokerUrl,
      QSTASH_TOKEN: DEV_TOKEN,
      QSTASH_CURRENT_SIGNING_KEY: keyA,
      QSTASH_NEXT_SIGNING_KEY: keyB,
    },
    { schema },
  );
  const node = running;
  const { row, report } = await runFaultScenario({
    name: "signing-key-rotation",
    api: node.client,
    sql: node.sql,
    base: () => node.node.url,
    orders: 60,
    orderRate: 5,
    readRate: 10,
    seed: 11,
    // The broker stops gracefully (its in-flight deliveries are recovered at its next start, and re-signed then)
    // and comes back signing with B, the key the actor host knows as its next one.
    inject: async () => {
      await broker?.kill("SIGTERM");
      broker = await startBroker(keyB, keyC);
    },
    faultMs: 5_000,
    heal: () => {},
    drainTimeoutMs: 90_000,
    logs: () => node.logs,
  });
  expectScenarioHeld(row, report);
  // No attempt was refused for its signature, during the switch or after it.
  const [refused] = await node.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM qstash_events WHERE response_status = 401`;
  expect(refused?.n).toBe(0);
  // And the broker now signs with B: a delivery to a receiver of our own verifies with B alone.
  let signature = "";
  const receiver = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(request) {
      signature = request.headers.get("upstash-signature") ?? "";
      return new Response("ok");
    },
  });
  try {
    const published = await fetch(`${brokerUrl}/v2/publish/http://127.0.0.1:${receiver.port}/after`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_TOKEN}` },
      body: "after the rotation",
    });
    expect(published.status).toBe(201);
    const deadline = Date.now() + 30_000;
    while (signature === "" && Date.now() < deadline) await Bun.sleep(50);
    await jwtVerify(signature, new TextEncoder().encode(keyB), { issuer: "Upstash" });
    expect(jwtVerify(signature, new TextEncoder().encode(keyA))).rejects.toThrow();
  } finally {
    receiver.stop(true);
  }
}, 240_000);
