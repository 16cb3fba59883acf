// Postgres saying "not now" to the broker (a lock wait past lock_timeout): a retryable 503, and nothing stored.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import type { Broker } from "../../deploy/local/broker/index.ts";
import {
  call,
  dropSchema,
  startReceiver,
  startTestBroker,
  TEST_DATABASE_URL,
  uniqueSchema,
  waitFor,
} from "./helpers.ts";

const schema = uniqueSchema("lock_timeout");
const destination = startReceiver();
const lines: string[] = [];
let broker: Broker;
/** Another client's session, without the broker's lock_timeout: it holds the lock the broker's writes wait for. */
let other: postgres.Sql;

beforeAll(async () => {
  // As an operator sets it for the broker's role: a statement gives up waiting on a lock after 500 ms.
  const separator = TEST_DATABASE_URL.includes("?") ? "&" : "?";
  broker = await startTestBroker(schema, {
    databaseUrl: `${TEST_DATABASE_URL}${separator}lock_timeout=500`,
    log: (line) => lines.push(line),
  });
  other = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
});

afterAll(async () => {
  await other?.end({ timeout: 1 });
  await broker?.stop();
  destination.stop();
  await dropSchema(schema);
});

/** Runs `send` while the other session holds qstash_messages in SHARE mode (no row can be inserted), then releases it. */
async function whileMessagesLocked<T>(send: () => Promise<T>): Promise<T> {
  let release!: () => void;
  let locked!: () => void;
  const held = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const done = other.begin(async (tx) => {
    await tx`LOCK TABLE qstash_messages IN SHARE MODE`;
    locked();
    await new Promise<void>((resolve) => {
      release = resolve;
    });
  });
  await held;
  try {
    return await send();
  } finally {
    release();
    await done;
  }
}

const stored = async (path: string) =>
  (await broker.sql`SELECT count(*)::int AS n FROM qstash_messages WHERE url = ${destination.url(path)}`)[0]
    ?.n;

test("a batch that waits on a locked table past lock_timeout is 503 with Retry-After, none of it stored; sent again it is", async () => {
  const items = ["/batch-a", "/batch-b"].map((path) => ({ destination: destination.url(path), body: path }));
  const request = () =>
    fetch(`${broker.url}/v2/batch`, {
      method: "POST",
      headers: { authorization: `Bearer ${broker.token}`, "content-type": "application/json" },
      body: JSON.stringify(items),
    });
  const refused = await whileMessagesLocked(request);
  expect(refused.status).toBe(503);
  expect(refused.headers.get("retry-after")).toBe("1");
  expect(refused.headers.get("content-type")).toBe("application/json");
  const body = (await refused.json()) as { error?: unknown };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error).toBe("string");
  expect(await stored("/batch-a")).toBe(0);
  expect(await stored("/batch-b")).toBe(0);
  // Logged as a refusal, with the server's code, not as the broker's own failure.
  expect(lines.filter((line) => line.startsWith("request POST /v2/batch"))).toEqual([
    expect.stringMatching(/^request POST \/v2\/batch: answered 503 \(retry in 1 s\): 55P03 /),
  ]);
  const again = await request();
  expect(again.status).toBe(201);
  await waitFor(() => destination.deliveries.length >= 2, 10_000, "both delivered");
  expect(destination.deliveries.map((d) => d.path).sort()).toEqual(["/batch-a", "/batch-b"]);
}, 30_000);

test("a publish and an enqueue refused the same way are 503 with Retry-After and store nothing", async () => {
  const publish = () => call(broker, `/v2/publish/${destination.url("/one")}`, { method: "POST", body: "x" });
  const enqueue = () =>
    call(broker, `/v2/enqueue/locked-queue/${destination.url("/queued")}`, { method: "POST", body: "y" });
  const [published, enqueued] = await whileMessagesLocked(async () => [await publish(), await enqueue()]);
  expect(published).toMatchObject({ status: 503, body: { error: expect.any(String) } });
  expect(enqueued).toMatchObject({ status: 503, body: { error: expect.any(String) } });
  expect(await stored("/one")).toBe(0);
  expect(await stored("/queued")).toBe(0);
  expect((await publish()).status).toBe(201);
  expect((await enqueue()).status).toBe(201);
}, 30_000);
