// Replies lost on the way back from Postgres: a statement that makes messages active commits, but the broker
// never hears so. The message must still be delivered, once, when the database is back (not only at a restart).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@upstash/qstash";
import { connect, type Sql } from "../../deploy/local/broker/db.ts";
import { type Broker, startBroker } from "../../deploy/local/broker/index.ts";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "../chaos/fault-proxy.ts";
import { call, dropSchema, postgresTarget, startReceiver, uniqueSchema, waitFor } from "./helpers.ts";

const destination = startReceiver();
const schemas: string[] = [];
let proxy: FaultProxy;
let broker: Broker | undefined;
let pool: Sql | undefined;
const logged: string[] = [];

beforeAll(async () => {
  proxy = await startFaultProxy({ target: postgresTarget() });
});
afterEach(async () => {
  proxy.setMode(Modes.pass);
  logged.length = 0;
  await broker?.stop();
  await pool?.end({ timeout: 1 });
  broker = undefined;
  pool = undefined;
});
afterAll(async () => {
  destination.stop();
  await proxy.close();
  for (const schema of schemas) await dropSchema(schema);
});

/**
 * A broker on one connection to Postgres, through the proxy (so that a statement goes out on the connection
 * already open, not on a new one whose handshake the fault would swallow), which never polls on its own.
 */
async function brokerThroughProxy(): Promise<Broker> {
  const schema = uniqueSchema("lost_replies");
  schemas.push(schema);
  pool = await connect({ url: proxiedUrl(proxy), max: 1, schema });
  broker = await startBroker({
    port: 0,
    sql: pool,
    timeScale: 1,
    pollIntervalMs: 60_000,
    log: (line) => logged.push(line),
  });
  return broker;
}

const publish = (to: Broker, body: string, headers: Record<string, string> = {}) =>
  call(to, `/v2/publish/${destination.url(`/lost/${body}`)}`, { method: "POST", body, headers });

/**
 * Every statement sent meanwhile reaches Postgres and commits; its reply is lost. Then its connection is reset
 * (leaving `mute` resets the connections it muted) and new ones work again.
 */
async function loseReplies(ms: number): Promise<void> {
  proxy.setMode(Modes.mute);
  await Bun.sleep(ms);
  proxy.setMode(Modes.pass);
}

/**
 * One message through, and the broker idle: its statements are prepared on the connection (postgres.js would
 * otherwise wait for Postgres to describe a new one before executing it, and the fault would swallow that
 * reply instead), and nothing it started earlier is still queued on the one connection.
 */
async function warmUp(to: Broker, body: string): Promise<void> {
  const published = await publish(to, body);
  expect(published.status).toBe(201);
  const { messageId } = published.body as { messageId: string };
  await waitFor(() => bodiesOf(body).length === 1, 5_000, "the first delivery");
  // The receiver takes the request before it answers, and the broker records the answer after that: its row goes
  // then. Idle only once it has (a fault while the outcome is still being written loses that reply instead).
  await waitFor(
    async () =>
      (await to.sql`SELECT count(*)::int AS n FROM qstash_messages WHERE id = ${messageId}`)[0]?.n === 0,
    5_000,
    "the first delivery's outcome",
  );
  await Bun.sleep(200);
}

const bodiesOf = (body: string) => destination.deliveries.filter((d) => d.body === body);

describe("the broker, when Postgres's replies are lost", () => {
  test("a publish that stored its message as active but failed: the retried publish is delivered once", async () => {
    const to = await brokerThroughProxy();
    await warmUp(to, "p0");
    const headers = { "Upstash-Deduplication-Id": "lost-publish" };
    const [first] = await Promise.all([publish(to, "p1", headers), loseReplies(1_000)]);
    expect(first.status).toBeGreaterThanOrEqual(500);
    const again = await publish(to, "p1", headers);
    expect(again.status).toBe(202); // a duplicate of the row the lost statement committed
    const { messageId } = again.body as { messageId: string };
    // That row, stored as active with nobody delivering it, must be delivered.
    await waitFor(() => bodiesOf("p1").length > 0, 10_000, "the delivery");
    await Bun.sleep(300);
    expect(bodiesOf("p1").map((d) => d.messageId)).toEqual([messageId]);
    expect(logged).toContain("recovered 1 message(s) left active by a lost reply; they will be delivered");
    // The row goes when the receiver's answer is recorded, after the receiver took the request: waited for.
    const stored = async () =>
      (await to.sql`SELECT count(*)::int AS n FROM qstash_messages WHERE id = ${messageId}`)[0]?.n;
    await waitFor(async () => (await stored()) === 0, 10_000, "the delivered message's row to go");
    expect(await stored()).toBe(0);
  });

  test("a claim that committed but whose reply was lost: the message is delivered once", async () => {
    const to = await brokerThroughProxy();
    await warmUp(to, "c0");
    const published = await publish(to, "c1", { "Upstash-Delay": "1s" });
    expect(published.status).toBe(201);
    const { messageId } = published.body as { messageId: string };
    // The claim falls due a second later, while replies are lost.
    await loseReplies(2_000);
    await waitFor(() => bodiesOf("c1").length > 0, 10_000, "the delivery");
    await Bun.sleep(300);
    expect(bodiesOf("c1").map((d) => d.messageId)).toEqual([messageId]);
    // The claim's attempt never began: it is not counted, and the log says what happened.
    expect(bodiesOf("c1")[0]?.retried).toBe(0);
    expect(logged).toContain("recovered 1 message(s) left active by a lost reply; they will be delivered");
    const client = new Client({ baseUrl: to.url, token: to.token });
    const states = async () =>
      (await client.logs({ messageIds: [messageId] })).logs.map((l) => l.state).reverse();
    // DELIVERED is logged when the receiver's answer is recorded, after the receiver took the request: waited for.
    await waitFor(async () => (await states()).includes("DELIVERED"), 10_000, "the DELIVERED event");
    expect(await states()).toEqual(["CREATED", "ACTIVE", "ERROR", "ACTIVE", "DELIVERED"]);
  });
});
