// A node and its embedded broker with DATABASE_URL through a real PgBouncer in transaction pooling mode.
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseConfig } from "../shared/config/index.ts";
import { TEST_DATABASE_URL } from "../test/broker/helpers.ts";
import { CommerceClient, eventually } from "../test/commerce/client.ts";
import { denoEntryCommand, startProcess } from "../test/e2e/process.ts";
import { edgewiseRejection } from "../test/support/errors.ts";
import { pgbouncerBinary, startPgBouncer, usePooledSchema } from "../test/support/pgbouncer.ts";
import { startBroker } from "./local/broker/index.ts";
import { startNode } from "./bun/node.ts";
import { connect, transactionPooled } from "./local/broker/db.ts";
import { referenceSystem } from "./reference.ts";

describe.skipIf(!pgbouncerBinary)("DATABASE_URL through a transaction pooler", () => {
  // The deployment's schema as an operator gives it to pooled connections: on every server connection.
  const fixture = usePooledSchema("txpool");
  const { schema } = fixture;

  test("the pooler is told from a direct connection", async () => {
    expect(await transactionPooled(fixture.pooler.url)).toBe(true);
    expect(await transactionPooled(TEST_DATABASE_URL)).toBe(false);
  });

  test("a pool's statements and transactions never meet a missing prepared statement", async () => {
    // postgres.js prepared each statement on whichever server connection PgBouncer lent: the next use of it, in
    // another transaction, failed with `prepared statement "…" does not exist`.
    const sql = await connect({ url: fixture.pooler.url, max: 4, prepare: "detect" });
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
        DATABASE_URL: fixture.pooler.url,
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

  test("on Deno (postgres.js over node:net there): the node confirms orders through it; a second one is refused", async () => {
    // `npm run start:deno` as an operator runs it: the probe, the pool, the broker and the lease through Deno's sockets.
    const root = resolve(import.meta.dir, "..");
    const dataDir = mkdtempSync(join(tmpdir(), "edgewise-txpool-deno-"));
    const secondDir = mkdtempSync(join(tmpdir(), "edgewise-txpool-deno2-"));
    const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
    const env = {
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: fixture.pooler.url,
      JWT_SECRET: jwtSecret,
      RATE_LIMIT: "1000000/60s",
      NO_COLOR: "1",
    };
    const node = await startProcess(denoEntryCommand(root), {
      cwd: root,
      env: { ...env, EDGEWISE_DATA_DIR: dataDir },
      pattern: /listening on (http:\/\/\S+)/,
    });
    try {
      const api = new CommerceClient({ base: node.match, jwtSecret });
      await api.putSku("deno-pooled-widget", 10, 500);
      await api.putAccount("deno-pooled-customer", 10_000);
      const placed = await Promise.all(
        Array.from({ length: 4 }, () =>
          api.place("deno-pooled-customer", [{ sku: "deno-pooled-widget", quantity: 1 }]),
        ),
      );
      for (const reply of placed) expect(reply.status).toBe(202);
      for (const reply of placed)
        expect((await api.settle(reply.body.orderId, undefined, 15_000)).status).toBe("confirmed");
      expect(await api.balance("deno-pooled-customer")).toBe(10_000 - 4 * 500);
      // Reserved turns into sold after the confirmation (API.md, step 5).
      await eventually(
        async () => (await api.sku("deno-pooled-widget")).sold === 4,
        "the four units to be sold",
      );
      expect(node.output()).not.toContain("prepared statement");

      const second = Bun.spawn(denoEntryCommand(root), {
        cwd: root,
        env: { ...process.env, ...env, EDGEWISE_DATA_DIR: secondDir },
        stdout: "pipe",
        stderr: "pipe",
      });
      const code = await Promise.race([second.exited, Bun.sleep(30_000).then(() => "running")]);
      if (code === "running") second.kill("SIGKILL");
      expect(code).toBe(1);
      expect(await new Response(second.stderr).text()).toContain(
        "another node hosts the actors of this database",
      );
    } finally {
      await node.kill("SIGTERM");
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(secondDir, { recursive: true, force: true });
    }
  }, 60_000);

  test("a search_path the pooler drops stops the node and the broker at start (exit 78), before any table is made", async () => {
    // PgBouncer refuses a search_path startup parameter; `ignore_startup_parameters = search_path`, the usual way
    // past that, drops it: the node made its tables, and took its lease, in `public`.
    const database = `edgewise_txpool_${process.pid}`;
    const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE ${database}`);
    const dropping = await startPgBouncer({
      database,
      settings: ["ignore_startup_parameters = search_path"],
    });
    const dataDir = mkdtempSync(join(tmpdir(), "edgewise-txpool-path-"));
    try {
      const url = `${dropping.url}?search_path=${schema}`;
      const config = parseConfig({
        HOST: "127.0.0.1",
        PORT: "0",
        DATABASE_URL: url,
        EDGEWISE_DATA_DIR: dataDir,
        JWT_SECRET: crypto.randomUUID() + crypto.randomUUID(),
      });
      const error = await edgewiseRejection(startNode({ config, ...referenceSystem(), log: () => {} }));
      expect(error.code).toBe("config.invalid");
      expect(error.issues?.[0]?.path).toBe("DATABASE_URL");
      expect(error.message).toContain(`asks for the schema "${schema}"`);
      const broker = await edgewiseRejection(startBroker({ port: 0, databaseUrl: url }));
      expect(broker.issues?.[0]?.path).toBe("DATABASE_URL");
      const made = postgres(TEST_DATABASE_URL.replace(/\/[^/?]*(\?|$)/, `/${database}$1`), { max: 1 });
      const [tables] = await made`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`;
      await made.end();
      expect(tables?.n).toBe(0);
    } finally {
      await dropping.stop();
      rmSync(dataDir, { recursive: true, force: true });
      await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  }, 30_000);
});

describe.skipIf(!pgbouncerBinary)("the transaction-pooler probe on a busy pooler", () => {
  test("a probe that outlives its 5 s bound leaves no connection behind in a transaction", async () => {
    // One server connection, held by another client for a little over the probe's bound: the probe's first query
    // answers after it gave up, while it closes its connections.
    const pooler = await startPgBouncer({ settings: ["default_pool_size = 1"] });
    const other = postgres(pooler.url, { max: 1, prepare: false, onnotice: () => {} });
    try {
      const busy = other.begin(async (tx) => {
        await tx`SELECT pg_sleep(5.5)`;
      });
      await Bun.sleep(100);
      expect(await transactionPooled(pooler.url)).toBe(false);
      await busy;
      await Bun.sleep(500);
      // A holder opened after the probe gave up, never closed, would keep the only server connection in its
      // transaction: this query would wait for it for good.
      const answered = await Promise.race([
        other`SELECT 1 AS one`.then(() => true),
        Bun.sleep(3_000).then(() => false),
      ]);
      expect(answered).toBe(true);
    } finally {
      await other.end({ timeout: 1 });
      await pooler.stop();
    }
  }, 30_000);
});
