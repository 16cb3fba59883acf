// A node and its embedded broker with DATABASE_URL through a real PgBouncer in transaction pooling mode.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../shared/config/index.ts";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../test/broker/helpers.ts";
import { CommerceClient, eventually } from "../test/commerce/client.ts";
import { type PgBouncer, pgbouncerBinary, startPgBouncer } from "../test/support/pgbouncer.ts";
import { startNode } from "./bun/node.ts";
import { connect, transactionPooled } from "./local/broker/db.ts";
import { referenceSystem } from "./reference.ts";

describe.skipIf(!pgbouncerBinary)("DATABASE_URL through a transaction pooler", () => {
  const schema = uniqueSchema("txpool");
  let pooler: PgBouncer;
  beforeAll(async () => {
    await createSchema(schema);
    // The deployment's schema as an operator gives it to pooled connections: on every server connection.
    pooler = await startPgBouncer({ schema });
  });
  afterAll(async () => {
    await pooler?.stop();
    await dropSchema(schema);
  });

  test("the pooler is told from a direct connection", async () => {
    expect(await transactionPooled(pooler.url)).toBe(true);
    expect(await transactionPooled(TEST_DATABASE_URL)).toBe(false);
  });

  test("a pool's statements and transactions never meet a missing prepared statement", async () => {
    // postgres.js prepared each statement on whichever server connection PgBouncer lent: the next use of it, in
    // another transaction, failed with `prepared statement "…" does not exist`.
    const sql = await connect({ url: pooler.url, max: 4, prepare: "detect" });
    try {
      const runs = Array.from({ length: 40 }, (_, i) =>
        i % 2
          ? sql`SELECT ${i}::int AS n, current_schema() AS s`
          : sql.begin(async (tx) => await tx`SELECT ${i}::int AS n, current_schema() AS s`),
      );
      for (const rows of await Promise.all(runs)) expect(rows[0]?.s).toBe(schema);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });

  test("a node places orders through it: billing, read model and broker", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "edgewise-txpool-"));
    const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
    const node = await startNode({
      config: parseConfig({
        HOST: "127.0.0.1",
        PORT: "0",
        DATABASE_URL: pooler.url,
        EDGEWISE_DATA_DIR: dataDir,
        JWT_SECRET: jwtSecret,
        RATE_LIMIT: "1000000/60s",
      }),
      ...referenceSystem(),
      brokerTimeScale: 0.01,
      log: () => {},
    });
    try {
      const api = new CommerceClient({ base: node.url, jwtSecret });
      await api.putSku("pooled-widget", 10, 500);
      await api.putAccount("pooled-customer", 10_000);
      const placed = await Promise.all(
        Array.from({ length: 4 }, () =>
          api.place("pooled-customer", [{ sku: "pooled-widget", quantity: 1 }]),
        ),
      );
      for (const reply of placed) expect(reply.status).toBe(202);
      for (const reply of placed)
        expect((await api.settle(reply.body.orderId, undefined, 15_000)).status).toBe("confirmed");
      expect(await api.balance("pooled-customer")).toBe(10_000 - 4 * 500);
      await eventually(async () => {
        const page = await api.call<{ items: unknown[] }>("GET", "/v1/orders?customerId=pooled-customer");
        return page.body.items.length === 4;
      }, "the read model to list the orders");
    } finally {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 40_000);
});
