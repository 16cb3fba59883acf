// The pool's sockets to a real Postgres (deploy/local/broker/pg-socket.ts): a reset never strands a query,
// the pool is back soon after the database, and the URL's hosts are tried in turn.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { connect, type Sql } from "../../deploy/local/broker/db.ts";
import { errorWithClose } from "../../deploy/local/broker/pg-socket.ts";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "../chaos/fault-proxy.ts";
import { postgresTarget, TEST_DATABASE_URL, waitFor } from "./helpers.ts";

let proxy: FaultProxy;
let pool: Sql | undefined;

beforeAll(async () => {
  proxy = await startFaultProxy({ target: postgresTarget() });
});
afterEach(async () => {
  proxy.setMode(Modes.pass);
  await pool?.end({ timeout: 1 });
  pool = undefined;
});
afterAll(async () => {
  await proxy.close();
});

/** A port on 127.0.0.1 that nothing listens on (just freed). */
async function closedPort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = server;
  server.stop(true);
  return port;
}

describe("the pool, through a faulty connection to Postgres", () => {
  test("a query made the moment another fails on a reset connection settles, and the pool recovers", async () => {
    pool = await connect({ url: proxiedUrl(proxy), max: 1 });
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

  test("after 12 s of resets, it is back within a second or two of Postgres", async () => {
    pool = await connect({ url: proxiedUrl(proxy), max: 2 });
    const sql = pool;
    await sql`SELECT 1`;
    let stop = false;
    let failures = 0;
    let healedAt = 0;
    let backAfterMs = Number.NaN;
    // Two callers asking every 100 ms, as the node's loops and requests would.
    const ask = async () => {
      while (!stop) {
        try {
          await sql`SELECT 1`;
          if (healedAt > 0 && Number.isNaN(backAfterMs)) backAfterMs = Date.now() - healedAt;
        } catch {
          failures++;
        }
        await Bun.sleep(100);
      }
    };
    const callers = [ask(), ask()];
    proxy.setMode(Modes.reset);
    await Bun.sleep(12_000);
    proxy.setMode(Modes.pass);
    healedAt = Date.now();
    await waitFor(() => !Number.isNaN(backAfterMs), 25_000, "a query to succeed");
    stop = true;
    await Promise.all(callers);
    expect(failures).toBeGreaterThan(10); // the fault was seen, again and again
    // postgres.js's own backoff had grown past 10 s by then (3^n / 100 s, up to 20 s); ours stops at 1 s.
    expect(backAfterMs).toBeLessThan(2_500);
  }, 45_000);

  test("with several hosts in the URL, a connection refused by one goes to the next", async () => {
    const url = new URL(TEST_DATABASE_URL);
    const refusing = `127.0.0.1:${await closedPort()}`;
    pool = await connect({ url: url.href.replace(url.host, `${refusing},${url.host}`), max: 1 });
    expect([...(await pool`SELECT 1 AS n`)]).toEqual([{ n: 1 }]);
  });
});

describe("errorWithClose", () => {
  test("an error waits for the close, and the two go out together, in order", async () => {
    const socket = new EventEmitter();
    errorWithClose(socket);
    const seen: string[] = [];
    socket.on("error", (error: Error) => seen.push(`error ${error.message}`));
    socket.on("close", (hadError: boolean) => seen.push(`close ${hadError}`));
    socket.on("data", () => seen.push("data"));
    socket.emit("data");
    socket.emit("error", new Error("ECONNRESET"));
    expect(seen).toEqual(["data"]);
    socket.emit("close", true);
    expect(seen).toEqual(["data", "error ECONNRESET", "close true"]);
  });

  test("an error with no close after it still goes out, after the grace", async () => {
    const socket = new EventEmitter();
    errorWithClose(socket, 50);
    const seen: string[] = [];
    socket.on("error", (error: Error) => seen.push(error.message));
    socket.emit("error", new Error("lonely"));
    expect(seen).toEqual([]);
    await Bun.sleep(100);
    expect(seen).toEqual(["lonely"]);
    socket.emit("close", true);
    expect(seen).toEqual(["lonely"]);
  });
});
