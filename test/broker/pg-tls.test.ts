// The pool's TLS to Postgres (deploy/local/broker/pg-socket.ts), through a TLS front to the real Postgres: sslmode
// as libpq reads it, the server's name sent (SNI) and verified, and a reset that never strands a query.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type Sql } from "../../deploy/local/broker/db.ts";
import { tlsFromUrl } from "../../deploy/local/broker/pg-socket.ts";
import { issueCert, makeCa } from "../../deploy/local/certs/openssl.ts";
import { type FaultProxy, Modes, startFaultProxy } from "../chaos/fault-proxy.ts";
import { startTlsFront, type TlsFront } from "../support/pg-tls-front.ts";
import { postgresTarget } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "edgewise-pg-tls-"));
const caFile = join(dir, "ca.pem");
let front: TlsFront;
let wrongName: TlsFront;
let proxy: FaultProxy;
let pool: Sql | undefined;

beforeAll(async () => {
  const ca = makeCa({ commonName: "Edgewise test Postgres CA", cert: caFile, key: join(dir, "ca-key.pem") });
  const leaf = (name: string, sans: string[]) =>
    issueCert({
      ca,
      commonName: name,
      sans,
      usage: ["serverAuth"],
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
  proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: front.port } });
});
afterEach(async () => {
  proxy.setMode(Modes.pass);
  await pool?.end({ timeout: 1 });
  pool = undefined;
});
afterAll(async () => {
  await proxy.close();
  await front.close();
  await wrongName.close();
});

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
    // verify-ca checks the chain only, as in libpq: the certificate for another name passes.
    const chainOnly = `sslmode=verify-ca&sslrootcert=${encodeURIComponent(caFile)}`;
    expect(await tryQuery(urlTo("localhost", wrongName.port, chainOnly))).toEqual([{ db: "test", n: 1 }]);
  });

  test("a server without TLS: require fails with the reason, prefer goes on in plain text", async () => {
    const plain = postgresTarget();
    expect(await tryQuery(urlTo(plain.host, plain.port, "sslmode=require"))).toBe(
      "server does not support SSL, but sslmode=require requires it",
    );
    await pool?.end({ timeout: 1 });
    expect(await tryQuery(urlTo(plain.host, plain.port, "sslmode=prefer"))).toEqual([{ db: "test", n: 1 }]);
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
    pool = await connect({ url: urlTo("127.0.0.1", proxy.port, "sslmode=require"), max: 1 });
    const sql = pool;
    expect([...(await sql`SELECT 1 AS n`)]).toEqual([{ n: 1 }]);
    const sessions = front.sessions.length;
    proxy.setMode(Modes.mute);
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
    expect(front.sessions.length).toBeGreaterThan(sessions); // a new TLS session after the reset
  });

  test("the URL's TLS parameters are read here and not sent to the server; a bad sslmode or missing file fails", () => {
    expect(tlsFromUrl("postgres://h/db")).toEqual({ url: "postgres://h/db", tls: undefined });
    expect(tlsFromUrl("postgres://h/db?sslmode=disable&application_name=x")).toEqual({
      url: "postgres://h/db?application_name=x",
      tls: undefined,
    });
    expect(tlsFromUrl(`postgres://h/db?sslrootcert=${caFile}`).tls).toMatchObject({ mode: "verify-full" });
    expect(tlsFromUrl("postgres://h/db?sslmode=require&sslrootcert=system")).toEqual({
      url: "postgres://h/db",
      tls: { mode: "verify-full", direct: false },
    });
    expect(() => tlsFromUrl("postgres://h/db?sslmode=maybe")).toThrow("sslmode must be one of");
    expect(() => tlsFromUrl("postgres://h/db?sslmode=verify-full&sslrootcert=/no/such.pem")).toThrow();
  });
});
