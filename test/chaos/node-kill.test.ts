// Chaos (d): the actor host (`npm start`, a child process, with its embedded broker and the real Postgres) is
// SIGKILLed halfway through 1,000 orders placed at bounded concurrency, then restarted with the same data dir,
// schema and port. A client retries every POST that failed with the same Idempotency-Key; once the queue drains,
// every accepted order is terminal, nothing is lost or applied twice, and the invariants hold.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type postgres from "postgres";
import { CommerceClient } from "../commerce/client.ts";
import type { Started } from "../e2e/process.ts";
import { restartablePort } from "../support/ports.ts";
import { createSchema, dropSchema, schemaPool, startNodeProcess, uniqueSchema } from "./nodes.ts";
import { runFaultScenario } from "./scenario.ts";

const ORDERS = Number(process.env.CHAOS_NODE_ORDERS ?? 1_000);
/** How long the node stays down between the kill and the restart. */
const DOWN_SECONDS = Number(process.env.CHAOS_NODE_DOWN_SECONDS ?? 2);

const schema = uniqueSchema("chaos_node");
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-chaos-node-"));
// The node restarts on it after the fault: outside the ephemeral range, so no outgoing connection takes it meanwhile.
const port = restartablePort();
const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
let node: Started | undefined;
let sql: postgres.Sql | undefined;
afterAll(async () => {
  await node?.kill("SIGTERM");
  await sql?.end({ timeout: 5 });
  await dropSchema(schema);
  rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

async function until(check: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(50);
  }
}

test(`the actor host SIGKILLed during ${ORDERS} orders and restarted: nothing lost or applied twice`, async () => {
  await createSchema(schema);
  const start = () => startNodeProcess({ port, dataDir, schema, jwtSecret });
  node = await start();
  sql = schemaPool(schema);
  const api = new CommerceClient({ base: `http://127.0.0.1:${port}`, jwtSecret });
  let restartMs = 0;
  let killedAtAccepted = 0;
  let outputBeforeKill = "";
  const { row, report } = await runFaultScenario({
    name: "node-kill",
    api,
    sql,
    base: () => api.target.base,
    orders: ORDERS,
    // Bounded concurrency: at most 32 requests in flight; the rate is a ceiling it rarely reaches.
    orderRate: 60,
    readRate: 5,
    maxInFlight: 32,
    seed: 4,
    beforeFault: (driver) => until(() => driver.accepted.length >= ORDERS / 2, 180_000, "half the orders"),
    inject: async (driver) => {
      killedAtAccepted = driver.accepted.length;
      outputBeforeKill = node?.output() ?? "";
      await node?.kill("SIGKILL");
    },
    faultMs: DOWN_SECONDS * 1000,
    heal: async () => {
      const started = Date.now();
      node = await start();
      restartMs = Date.now() - started;
    },
    afterHeal: (driver) => until(() => driver.remaining === 0, 180_000, "every order placed"),
    drainTimeoutMs: 60_000,
    extra: () => ({
      ordersPlanned: ORDERS,
      downSeconds: DOWN_SECONDS,
      nodeRestartMs: restartMs,
      killedAfterAccepted: killedAtAccepted,
      nodeErrorsBeforeKill: (outputBeforeKill.match(/error/gi) ?? []).length,
    }),
  });
  expect(report.stuck).toEqual([]);
  expect(report.invariants.violations).toEqual([]);
  expect(report.backlog.deadLettered).toBe(0);
  expect(report.readModel).toEqual([]);
  expect(row.hung).toBe(0);
  expect(row.ordersAccepted).toBe(ORDERS);
  expect(row.outcomes.confirmed).toBeGreaterThan(0);
  // /readyz answers within its own check timeout (2 s), whatever a dependency does.
  expect(row.readyzHung).toBe(0);
}, 600_000);
