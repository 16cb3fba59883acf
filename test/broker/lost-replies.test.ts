// Replies lost on the way back from Postgres: a statement commits, but its client never hears so.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Sql } from "../../deploy/local/broker/db.ts";
import { type FaultProxy, Modes, startFaultProxy } from "../chaos/fault-proxy.ts";

const POSTGRES = new URL(process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test");
let proxy: FaultProxy;
let pool: Sql | undefined;

beforeAll(async () => {
  proxy = await startFaultProxy({ target: { host: POSTGRES.hostname, port: Number(POSTGRES.port || 5432) } });
});
afterEach(async () => {
  proxy.setMode(Modes.pass);
  await pool?.end({ timeout: 1 });
  pool = undefined;
});
afterAll(async () => {
  await proxy.close();
});

describe("the broker, when Postgres's replies are lost", () => {
  test("its pool: a query made the moment another fails on a reset connection settles, and the pool recovers", async () => {
    const url = new URL(POSTGRES);
    url.host = proxy.address;
    pool = await connect({ url: url.href, max: 1 });
    const sql = pool;
    expect([...(await sql`SELECT 1 AS n`)]).toEqual([{ n: 1 }]);
    proxy.setMode(Modes.mute);
    // postgres.js 3.4 queued a query made between the socket's error and its close on the dying connection,
    // and never settled it: whoever awaited it (a retry loop, a relay) hung for good.
    const next = sql`SELECT 2 AS n`.then(
      () => "first answered",
      () =>
        sql`SELECT 3 AS n`.then(
          (rows) => rows,
          (error: Error) => error.message,
        ),
    );
    await Bun.sleep(300);
    proxy.setMode(Modes.pass);
    const settled = await Promise.race([next, Bun.sleep(5_000).then(() => "hung")]);
    expect(settled).not.toBe("hung");
    expect([...(await sql`SELECT 4 AS n`)]).toEqual([{ n: 4 }]);
  });
});
