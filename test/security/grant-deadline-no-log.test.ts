// An API key created on a node without the commerce extension (no activity log, so no record to write with it),
// against another session holding its table past the caller's deadline (the `postgres` timeout, 3 s here; real
// Postgres): answered 504 and rolled back when it resumes, never committed after that answer, as with the log.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { uniqueName } from "../commerce/client.ts";
import {
  type AuditedNode,
  auditedView,
  call,
  deadlineTestTimeoutMs,
  holdingPastDeadline,
  token,
} from "./admin-events-cases.ts";

const schema = uniqueSchema("grant_deadline_no_log");
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-grant-deadline-no-log-"));
const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
let running: EdgewiseNode;
let node: AuditedNode;

beforeAll(async () => {
  // No `extend`: the counter alone, as a node built without the reference system's commerce extension.
  running = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: TEST_DATABASE_URL,
      EDGEWISE_DATA_DIR: dataDir,
      JWT_SECRET: jwtSecret,
      RATE_LIMIT: "1000000/60s",
    }),
    actors: [counterActor],
    schema,
    brokerTimeScale: 0.01,
    postgresTimeoutMs: deadlineTestTimeoutMs,
    log: () => {},
  });
  node = auditedView(running, jwtSecret, []);
}, 60_000);
afterAll(async () => {
  await running?.stop();
  await dropSchema(schema);
  rmSync(dataDir, { recursive: true, force: true });
});

async function keysOf(sub: string): Promise<string[]> {
  const rows = await node.sql<{ id: string }[]>`SELECT id FROM edgewise_api_keys WHERE sub = ${sub}`;
  return rows.map((row) => row.id);
}

const createKey = async (sub: string) =>
  call(node, "POST", "/v1/api-keys", await token(node, "root"), { sub, scopes: ["admin"] });

test("the node has no activity log: a key is created with no record", async () => {
  const [table] = await node.sql<{ name: string | null }[]>`SELECT to_regclass('activity_log')::text AS name`;
  expect(table?.name).toBeNull();
  const sub = uniqueName("no-log-key");
  expect((await createKey(sub)).status).toBe(201);
  expect(await keysOf(sub)).toHaveLength(1);
});

test("an API key waiting on its table past the timeout is answered 504 and never exists", async () => {
  const sub = uniqueName("no-log-deadline-key");
  const hold = await holdingPastDeadline(node.sql, (tx) => tx`LOCK TABLE edgewise_api_keys IN SHARE MODE`);
  const answer = await createKey(sub);
  await hold.letGo();
  await Bun.sleep(300); // the creation's own statement goes on once the lock is let go
  expect(answer.status).toBe(504);
  expect(answer.contentType).toStartWith("application/problem+json");
  expect(JSON.stringify(answer.body)).not.toContain("ew_");
  expect(await keysOf(sub)).toEqual([]);
  // Nothing stands in the way of the retry.
  expect((await createKey(sub)).status).toBe(201);
  expect(await keysOf(sub)).toHaveLength(1);
}, 30_000);
