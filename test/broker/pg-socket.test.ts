// The pool's sockets to a real Postgres (deploy/local/broker/pg-socket.ts): a reset never strands a query nor leaves a
// connection unable to connect again, the pool is back soon after the database, the URL's hosts are tried in turn,
// and TLS is as the URL's sslmode asks (through a TLS front to the real Postgres, which has none): the server's name
// sent (SNI) and verified.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type Sql } from "../../deploy/local/broker/db.ts";
import { errorWithClose, pgSockets, tlsFromUrl } from "../../deploy/local/broker/pg-socket.ts";
import { issueCert, makeCa } from "../../deploy/local/certs/openssl.ts";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "../chaos/fault-proxy.ts";
import { startTlsFront, type TlsFront } from "../support/pg-tls-front.ts";
import { postgresTarget, queryMadeAtTheError, TEST_DATABASE_URL, waitFor } from "./helpers.ts";

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
    // postgres.js 3.4 queued a query made between the socket's error and its close on the dying connection,
    // and never settled it: whoever awaited it (a retry loop, a relay) hung for good.
    expect(await queryMadeAtTheError(sql, proxy)).not.toBe("hung");
    expect([...(await sql`SELECT 4 AS n`)]).toEqual([{ n: 4 }]);
  });

  test("a query given a connection whose socket has just closed fails, and the connection connects again", async () => {
    // On Bun a reset marks the socket closed a moment before its `error` and `close` are emitted. A query handed to
    // the connection in between has its bytes waiting for a setImmediate when the close comes; postgres.js 3.4 kept
    // them, so the connection's next socket never sent its startup message, and every query given that connection
    // waited (in the node, its 5 s timeout) until connect_timeout, again and again (deploy/patches/
    // postgres-unsent-write.mjs). Destroying the socket just before the query stands for that reset.
    const sockets: net.Socket[] = [];
    const tcp = pgSockets();
    pool = await connect({
      url: TEST_DATABASE_URL,
      max: 1,
      socket: ((options: Parameters<typeof tcp>[0]) => {
        const socket = tcp(options) as net.Socket;
        sockets.push(socket);
        return socket;
      }) as () => unknown,
    });
    const sql = pool;
    expect([...(await sql`SELECT 1 AS n`)]).toEqual([{ n: 1 }]);
    sockets.at(-1)?.destroy(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
    const lost = sql`SELECT 2 AS n`.then(
      () => "answered",
      (error: { code?: string }) => error.code,
    );
    expect(await lost).toBe("ECONNRESET");
    const next = sql`SELECT 3 AS n`.then((rows) => [...rows]);
    expect(await Promise.race([next, Bun.sleep(3_000).then(() => "hung")])).toEqual([{ n: 3 }]);
    expect(sockets).toHaveLength(2);
  });

  test("a reset during a transaction fails it, and the ROLLBACK sent after it does not crash the process", async () => {
    pool = await connect({ url: proxiedUrl(proxy), max: 1 });
    const sql = pool;
    let inside!: () => void;
    const started = new Promise<void>((resolve) => {
      inside = resolve;
    });
    const transaction = sql
      .begin(async (tx) => {
        inside();
        await tx`SELECT pg_sleep(5)`;
      })
      .then(
        () => "committed",
        (error: { code?: string }) => error.code,
      );
    await started;
    await Bun.sleep(100); // the sleep's query is on the wire
    proxy.setMode(Modes.reset);
    expect(await transaction).toBe("CONNECTION_CLOSED");
    // postgres.js 3.4 wrote begin's ROLLBACK to the closed connection in a setImmediate, which threw where nothing
    // could catch it (deploy/patches/postgres-next-write.mjs): the test run failed here with an unhandled error.
    await Bun.sleep(50);
    proxy.setMode(Modes.pass);
    expect([...(await sql`SELECT 5 AS n`)]).toEqual([{ n: 5 }]);
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
    // postgres.js's own backoff had grown past 10 s by then (3^n / 100 s, up to 20 s); ours stops at 1 s. Half of
    // 10 s leaves a loaded machine's reconnect and stalls room over that second.
    expect(backAfterMs).toBeLessThan(5_000);
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

const dir = mkdtempSync(join(tmpdir(), "edgewise-pg-tls-"));
const caFile = join(dir, "ca.pem");
let front: TlsFront;
let wrongName: TlsFront;
/** Asks for a client certificate signed by the test CA. */
let mutual: TlsFront;
let tlsProxy: FaultProxy;

const urlTo = (host: string, port: number, query: string) =>
  `postgres://postgres@${host}:${port}/test?${query}`;

/** Connects and runs one query: the rows, or the error's message. */
async function tryQuery(url: string): Promise<unknown> {
  pool = await connect({ url, max: 1 });
  const sql = pool;
  return sql`SELECT current_database() AS db, 1 AS n`.then(
    (rows) => [...rows],
    (error: Error) => error.message,
  );
}

describe("TLS to Postgres, from the URL's sslmode", () => {
  beforeAll(async () => {
    const ca = makeCa({
      commonName: "Edgewise test Postgres CA",
      cert: caFile,
      key: join(dir, "ca-key.pem"),
    });
    const leaf = (name: string, sans: string[], usage: "serverAuth" | "clientAuth" = "serverAuth") =>
      issueCert({
        ca,
        commonName: name,
        sans,
        usage: [usage],
        cert: join(dir, `${name}.pem`),
        key: join(dir, `${name}-key.pem`),
      });
    const read = async (files: { cert: string; key: string }) => ({
      cert: await Bun.file(files.cert).text(),
      key: await Bun.file(files.key).text(),
    });
    front = await startTlsFront({
      target: postgresTarget(),
      ...(await read(leaf("localhost", ["DNS:localhost", "IP:127.0.0.1"]))),
    });
    wrongName = await startTlsFront({
      target: postgresTarget(),
      ...(await read(leaf("elsewhere.test", ["DNS:elsewhere.test"]))),
    });
    mutual = await startTlsFront({
      target: postgresTarget(),
      ...(await read(leaf("localhost", ["DNS:localhost"]))),
      clientCa: await Bun.file(caFile).text(),
    });
    leaf("edgewise-node", [], "clientAuth");
    tlsProxy = await startFaultProxy({ target: { host: "127.0.0.1", port: front.port } });
  });
  afterEach(() => {
    tlsProxy.setMode(Modes.pass);
  });
  afterAll(async () => {
    await tlsProxy.close();
    await front.close();
    await wrongName.close();
    await mutual.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("sslmode=require: TLS, with the server's name in SNI; the pool works", async () => {
    expect(await tryQuery(urlTo("localhost", front.port, "sslmode=require"))).toEqual([{ db: "test", n: 1 }]);
    expect(front.sessions.at(-1)).toEqual({
      negotiation: "sslrequest",
      servername: "localhost",
      alpn: false,
    });
  });

  test("verify-full checks the chain and the name: our CA passes, the system's store or another name fails", async () => {
    const trusted = `sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`;
    expect(await tryQuery(urlTo("localhost", front.port, trusted))).toEqual([{ db: "test", n: 1 }]);
    await pool?.end({ timeout: 1 });
    expect(String(await tryQuery(urlTo("localhost", front.port, "sslmode=verify-full")))).toMatch(
      /certificate|self.signed|issuer/i,
    );
    await pool?.end({ timeout: 1 });
    expect(String(await tryQuery(urlTo("localhost", wrongName.port, trusted)))).toMatch(
      /altnames|hostname|localhost/i,
    );
    await pool?.end({ timeout: 1 });
    // An IP address is checked against the certificate's IP entries (and sent without SNI).
    expect(await tryQuery(urlTo("127.0.0.1", front.port, trusted))).toEqual([{ db: "test", n: 1 }]);
    expect(front.sessions.at(-1)).toMatchObject({ servername: false });
    await pool?.end({ timeout: 1 });
    expect(String(await tryQuery(urlTo("127.0.0.1", wrongName.port, trusted)))).toMatch(/altnames|IP/i);
    await pool?.end({ timeout: 1 });
    // verify-ca checks the chain only, as in libpq: the certificate for another name passes.
    const chainOnly = `sslmode=verify-ca&sslrootcert=${encodeURIComponent(caFile)}`;
    expect(await tryQuery(urlTo("localhost", wrongName.port, chainOnly))).toEqual([{ db: "test", n: 1 }]);
    await pool?.end({ timeout: 1 });
    // require with a root certificate file is verify-ca, as in libpq: a server our CA did not sign is refused.
    const otherCa = join(dir, "other-ca.pem");
    makeCa({ commonName: "Some other CA", cert: otherCa, key: join(dir, "other-ca-key.pem") });
    const requireOther = `sslmode=require&sslrootcert=${encodeURIComponent(otherCa)}`;
    expect(String(await tryQuery(urlTo("localhost", front.port, requireOther)))).toMatch(
      /certificate|self.signed|issuer|verify/i,
    );
    await pool?.end({ timeout: 1 });
    const requireOurs = `sslmode=require&sslrootcert=${encodeURIComponent(caFile)}`;
    expect(await tryQuery(urlTo("localhost", wrongName.port, requireOurs))).toEqual([{ db: "test", n: 1 }]);
  });

  test("a server without TLS: require fails with the reason, prefer goes on in plain text", async () => {
    const plain = postgresTarget();
    expect(await tryQuery(urlTo(plain.host, plain.port, "sslmode=require"))).toBe(
      `TLS to Postgres at ${plain.host}:${plain.port} failed: server does not support SSL, but sslmode=require requires it`,
    );
    await pool?.end({ timeout: 1 });
    expect(await tryQuery(urlTo(plain.host, plain.port, "sslmode=prefer"))).toEqual([{ db: "test", n: 1 }]);
  });

  test("sslcert and sslkey: a server that asks for a client certificate gets ours; without one it refuses", async () => {
    const client = `sslcert=${encodeURIComponent(join(dir, "edgewise-node.pem"))}&sslkey=${encodeURIComponent(join(dir, "edgewise-node-key.pem"))}`;
    expect(await tryQuery(urlTo("localhost", mutual.port, `sslmode=require&${client}`))).toEqual([
      { db: "test", n: 1 },
    ]);
    expect(mutual.sessions.at(-1)).toMatchObject({ servername: "localhost", client: "edgewise-node" });
    await pool?.end({ timeout: 1 });
    expect(typeof (await tryQuery(urlTo("localhost", mutual.port, "sslmode=require")))).toBe("string");
    expect(mutual.sessions).toHaveLength(1);
    expect(() => tlsFromUrl(`postgres://h/db?sslcert=${caFile}`)).toThrow("sslcert and sslkey go together");
  });

  test("sslnegotiation=direct: TLS from the first byte, with ALPN postgresql", async () => {
    expect(await tryQuery(urlTo("localhost", front.port, "sslmode=require&sslnegotiation=direct"))).toEqual([
      { db: "test", n: 1 },
    ]);
    expect(front.sessions.at(-1)).toEqual({
      negotiation: "direct",
      servername: "localhost",
      alpn: "postgresql",
    });
  });

  test("over TLS, a query made the moment another fails on a reset connection settles, and the pool recovers", async () => {
    pool = await connect({ url: urlTo("127.0.0.1", tlsProxy.port, "sslmode=require"), max: 1 });
    const sql = pool;
    expect([...(await sql`SELECT 1 AS n`)]).toEqual([{ n: 1 }]);
    const sessions = front.sessions.length;
    expect(await queryMadeAtTheError(sql, tlsProxy)).not.toBe("hung");
    expect([...(await sql`SELECT 4 AS n`)]).toEqual([{ n: 4 }]);
    expect(front.sessions.length).toBeGreaterThan(sessions); // a new TLS session after the reset
  });

  test("the URL's TLS parameters are read here and not sent to the server; a bad sslmode or missing file fails", () => {
    expect(tlsFromUrl("postgres://h/db")).toEqual({ url: "postgres://h/db", tls: undefined });
    expect(tlsFromUrl("postgres://h/db?sslmode=disable&application_name=x")).toEqual({
      url: "postgres://h/db?application_name=x",
      tls: undefined,
    });
    expect(tlsFromUrl(`postgres://h/db?sslrootcert=${caFile}`).tls).toMatchObject({ mode: "verify-full" });
    expect(tlsFromUrl(`postgres://h/db?sslmode=require&sslrootcert=${caFile}`).tls).toMatchObject({
      mode: "verify-ca",
    });
    expect(tlsFromUrl("postgres://h/db?sslmode=require&sslrootcert=system")).toEqual({
      url: "postgres://h/db",
      tls: { mode: "verify-full", direct: false },
    });
    expect(() => tlsFromUrl("postgres://h/db?sslmode=maybe")).toThrow("sslmode must be one of");
    expect(() => tlsFromUrl("postgres://h/db?sslmode=verify-full&sslrootcert=/no/such.pem")).toThrow();
  });
});
