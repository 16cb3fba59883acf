// Security events on a running node: bad tokens, rate-limit denials and forged deliveries land in GET /v1/activity, bounded.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { CommerceClient, eventually } from "../commerce/client.ts";
import { awayFromBoundary } from "../rate-limit/support.ts";

const capture = captureSink();
const schema = uniqueSchema("observability_logs");
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-logs-node-"));
const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
let node: EdgewiseNode;
let client: CommerceClient;

beforeAll(async () => {
  node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: TEST_DATABASE_URL,
      EDGEWISE_DATA_DIR: dataDir,
      JWT_SECRET: jwtSecret,
      // Anonymous callers from 127.0.0.1 get eight reads a minute; each admin read below is its own subject.
      RATE_LIMIT: "8/60s",
    }),
    ...referenceSystem(),
    schema,
    brokerTimeScale: 0.01,
    logger: createLogger({ level: "debug", sink: capture.sink }),
  });
  client = new CommerceClient({ base: node.url, jwtSecret });
}, 30_000);
afterAll(async () => {
  await node?.stop();
  await dropSchema(schema);
  rmSync(dataDir, { recursive: true, force: true });
});

let reads = 0;
/** The activity of one type, read as a fresh admin subject each time (so the reads spend no shared budget). */
async function activity(
  type: string,
): Promise<Array<{ type: string; subject?: string; data: Record<string, unknown> }>> {
  reads += 1;
  const reply = await client.call<{
    items: Array<{ type: string; subject?: string; data: Record<string, unknown> }>;
  }>("GET", `/v1/activity?type=${type}&limit=100`, { as: { sub: `auditor-${reads}`, scopes: ["admin"] } });
  expect(reply.status).toBe(200);
  return reply.body.items;
}

describe("security events on a node", () => {
  test("a flood of bad tokens is recorded as security.auth_failed, at most 10 a second, the rest counted", async () => {
    const forged = await issueToken({
      sub: "admin",
      scopes: ["admin"],
      ttlSeconds: 600,
      secret: "f".repeat(48),
    });
    const statuses = await Promise.all(
      Array.from({ length: 25 }, () =>
        fetch(`${node.url}/v1/counters/x`, { headers: { authorization: `Bearer ${forged}` } }).then(
          (response) => response.status,
        ),
      ),
    );
    // Every one is refused: eight with 401, then 429, as refusals spend the address's budget (8/60s). The
    // limiter's windows are fixed to the wall clock: a burst that straddles a boundary gets a second eight.
    const refused401 = statuses.filter((status) => status === 401).length;
    expect(statuses.filter((status) => status !== 401 && status !== 429)).toEqual([]);
    expect(refused401).toBeGreaterThanOrEqual(8);
    expect(refused401).toBeLessThanOrEqual(16);
    expect(statuses.filter((status) => status === 429).length).toBe(25 - refused401);
    const stats = node.securityEvents.stats();
    expect(stats.accepted.auth_failed + stats.dropped.auth_failed).toBe(25);
    expect(stats.dropped.auth_failed).toBeGreaterThan(0);

    let items: Awaited<ReturnType<typeof activity>> = [];
    await eventually(async () => {
      items = await activity("security.auth_failed");
      return items.length >= stats.accepted.auth_failed;
    }, "the auth failures in the activity log");
    expect(items).toHaveLength(stats.accepted.auth_failed);
    expect(node.securityEvents.stats().failed.auth_failed).toBe(0);
    for (const item of items) {
      expect(item).toMatchObject({
        type: "security.auth_failed",
        subject: "ip:127.0.0.1",
        data: {
          reason: "invalid token: bad signature",
          scheme: "bearer",
          clientIp: "127.0.0.1",
          path: "/v1/counters/x",
        },
      });
    }
    expect(JSON.stringify(items)).not.toContain(forged);
    for (const line of capture.lines) expect(line).not.toContain(forged);
  }, 30_000);

  test("rate-limit denials and forged deliveries are recorded too", async () => {
    // The limiter's windows are whole minutes since the epoch (memory.ts): eleven reads that straddle the end of one
    // get a second budget and fewer than three 429s. Start with 10 s of the window left at least.
    await awayFromBoundary(60_000, 10_000);
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await fetch(`${node.url}/v1/nothing-here`)).status);
    expect(statuses.filter((status) => status === 429)).toHaveLength(3);
    const forgedDelivery = await fetch(`${node.url}/_edgewise/deliver/counter/x`, {
      method: "POST",
      body: "{}",
      headers: { "upstash-signature": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.Zm9yZ2VkLXNpZ25hdHVyZQ" },
    });
    expect(forgedDelivery.status).toBe(401);

    await eventually(async () => (await activity("security.rate_limited")).length === 3, "the denials");
    await eventually(
      async () => (await activity("security.signature_failed")).length === 1,
      "the forged delivery",
    );
    const [denial] = await activity("security.rate_limited");
    expect(denial).toMatchObject({
      subject: "ip:127.0.0.1",
      data: { routeClass: "read", clientIp: "127.0.0.1" },
    });
    const [signature] = await activity("security.signature_failed");
    expect(signature).toMatchObject({
      subject: "counter/x",
      data: { target: "counter/x", reason: "invalid" },
    });
    expect(JSON.stringify(signature)).not.toContain("Zm9yZ2VkLXNpZ25hdHVyZQ");
  }, 30_000);

  test("the node's own lines are JSON with request ids; no admin token appears in them", async () => {
    const records = capture.records();
    const access = records.filter((record) => record.msg === "request");
    expect(access.length).toBeGreaterThan(30);
    for (const record of access) expect(typeof record.request_id).toBe("string");
    expect(access.some((record) => record.status === 429 && record.route !== undefined)).toBe(true);
    expect(
      access.some(
        (record) => typeof record.sub === "string" && (record.sub as string).startsWith("auditor-"),
      ),
    ).toBe(true);
    const tokens = await Promise.all(
      Array.from({ length: reads }, (_, i) => client.token(`auditor-${i + 1}`, ["admin"])),
    );
    for (const line of capture.lines) for (const token of tokens) expect(line).not.toContain(token);
  });
});
