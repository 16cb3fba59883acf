// The embedded path: PGlite as the broker's store (in process, or behind pglite-socket), across a restart and a SIGKILL.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client, Receiver } from "@upstash/qstash";
import postgres from "postgres";
import { DEV_TOKEN, startBroker } from "../../deploy/local/broker/index.ts";
import { startNode } from "../../deploy/bun/node.ts";
import { connect, migrate, relaxedCommit } from "../../deploy/local/broker/db.ts";
import { claimDue, insertMessages } from "../../deploy/local/broker/store-messages.ts";
import { recordOutcomes } from "../../deploy/local/broker/store-outcomes.ts";
import { WalWriter } from "../../deploy/local/pglite/wal-writer.ts";
import type { NewMessage } from "../../deploy/local/broker/types.ts";
import { startEmbeddedPostgres } from "../../deploy/local/pglite/index.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { restartablePort } from "../support/ports.ts";
import { startReceiver, waitFor } from "./helpers.ts";

const root = resolve(import.meta.dir, "../..");
// One data dir for the whole file: creating a PGlite database (initdb) takes seconds, opening one does not.
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-broker-"));
const destination = startReceiver();
const children: Bun.Subprocess[] = [];

afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  destination.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** `npm run broker` as a process of its own on this file's data dir (embedded PGlite), once it answers. */
async function startBrokerProcess(
  port: number,
  settings: Record<string, string> = {},
): Promise<Bun.Subprocess> {
  const { DATABASE_URL: _ignored, ...env } = process.env;
  const child = Bun.spawn([process.execPath, join(root, "deploy/local/broker/main.ts")], {
    cwd: root,
    env: { ...env, EDGEWISE_DATA_DIR: dataDir, QSTASH_PORT: String(port), ...settings },
    stdout: "ignore",
    stderr: "pipe",
  });
  children.push(child);
  await waitFor(
    async () => {
      const headers = { authorization: `Bearer ${DEV_TOKEN}` };
      const keys = await fetch(`http://127.0.0.1:${port}/v2/keys`, { headers }).catch(() => undefined);
      return keys?.ok === true;
    },
    15_000,
    "the broker process",
  ).catch(async (error) => {
    child.kill("SIGKILL");
    throw new Error(`${error}: ${await new Response(child.stderr as ReadableStream).text()}`);
  });
  return child;
}

describe("embedded PGlite", () => {
  test("with transport tcp, pglite-socket serves postgres.js over 127.0.0.1", async () => {
    const pg = await startEmbeddedPostgres({ dataDir, transport: "tcp" });
    const sql = postgres(pg.url, { max: pg.maxConnections, onnotice: () => {} });
    try {
      expect(pg.url).toStartWith("postgres://postgres@127.0.0.1:");
      expect(pg.socket).toBeUndefined();
      const [row] = await sql`SELECT 1 + 1 AS two`;
      expect(row?.two).toBe(2);
    } finally {
      await sql.end();
      await pg.stop();
    }
  }, 30_000);

  test("in process (the default), postgres.js gets the wire protocol without TCP", async () => {
    const pg = await startEmbeddedPostgres({ dataDir });
    const sql = await connect({ url: pg.url, max: pg.maxConnections, socket: pg.socket });
    try {
      expect(pg.socket).toBeFunction();
      await sql`CREATE TABLE IF NOT EXISTS wire_check (id int PRIMARY KEY, note text NOT NULL)`;
      await sql`TRUNCATE wire_check`;
      // Pipelined statements (postgres.js sends them together), each with parameters, in one connection.
      await Promise.all(
        Array.from({ length: 40 }, (_, n) => sql`INSERT INTO wire_check VALUES (${n}, ${`n${n}`})`),
      );
      // An error fails its own statement only, and the connection goes on.
      await expect(sql`INSERT INTO wire_check VALUES (1, 'again')`).rejects.toThrow(/duplicate key/);
      const [count] = await sql`SELECT count(*)::int AS n FROM wire_check`;
      expect(count?.n).toBe(40);
      // A transaction that throws rolls back; one that returns commits.
      await expect(
        sql.begin(async (tx) => {
          await tx`INSERT INTO wire_check VALUES (100, 'rolled back')`;
          throw new Error("abort");
        }),
      ).rejects.toThrow("abort");
      await sql.begin(async (tx) => {
        await tx`INSERT INTO wire_check VALUES (101, 'kept')`;
      });
      const ids = await sql`SELECT id FROM wire_check WHERE id >= 100`;
      expect(ids.map((r) => r.id)).toEqual([101]);
      // A reply far larger than one chunk arrives whole.
      const big = await sql`SELECT repeat('x', 100000) AS b FROM generate_series(1, 30)`;
      expect(big.map((r) => r.b.length)).toEqual(Array(30).fill(100000));
      // One connection at a time, as over TCP: a second pool cannot open one while the first holds it.
      const second = await connect({ url: pg.url, max: 1, socket: pg.socket });
      await expect(second`SELECT 1`).rejects.toThrow(/one connection at a time|in use/);
      await second.end();
    } finally {
      await sql.end();
      await pg.stop();
    }
  }, 30_000);

  test("FULL (the default): each commit is fsynced before it returns; NORMAL makes no fsync", async () => {
    for (const sync of ["FULL", "NORMAL"] as const) {
      const pg = await startEmbeddedPostgres({ dataDir, sync });
      const sql = await connect({ url: pg.url, max: pg.maxConnections, socket: pg.socket });
      try {
        const [setting] = await sql`SELECT current_setting('fsync') AS fsync`;
        expect(setting?.fsync).toBe(sync === "FULL" ? "on" : "off");
        await sql`CREATE TABLE IF NOT EXISTS sync_check (id int PRIMARY KEY)`;
        await sql`TRUNCATE sync_check`;
        for (let n = 0; n < 5; n++) {
          const before = pg.fsyncs();
          await sql`INSERT INTO sync_check VALUES (${n})`;
          // The commit's WAL reached the disk before the insert returned.
          if (sync === "FULL") expect(pg.fsyncs()).toBeGreaterThan(before);
        }
        if (sync === "NORMAL") expect(pg.fsyncs()).toBe(0);
      } finally {
        await sql.end();
        await pg.stop();
      }
    }
  }, 30_000);

  test("FULL: a publish waits for the disk; a claim and a delivered message's removal do not", async () => {
    const pg = await startEmbeddedPostgres({ dataDir, sync: "FULL" });
    const sql = await connect({ url: pg.url, max: pg.maxConnections, socket: pg.socket });
    try {
      await migrate(sql);
      const message = (id: string): NewMessage => ({
        id,
        url: "http://127.0.0.1:9/x",
        method: "POST",
        headers: {},
        body: new TextEncoder().encode("{}"),
        queueName: null,
        maxRetries: 3,
        timeoutMs: 1_000,
        dueAt: 0,
        notBefore: null,
        createdAt: Date.now(),
        callerIp: null,
        dedupKey: null,
      });
      const ids = ["fsync-1", "fsync-2", "fsync-3"];
      let before = pg.fsyncs();
      await insertMessages(sql, ids.map(message), 60_000);
      expect(pg.fsyncs()).toBeGreaterThan(before);
      before = pg.fsyncs();
      const claimed = (await claimDue(sql, 100, Date.now())).filter((row) => ids.includes(row.id));
      expect(claimed.map((row) => row.id)).toEqual(ids);
      expect(claimed[0]).not.toHaveProperty("relaxed_commit");
      await recordOutcomes(
        sql,
        claimed.map((row) => ({ kind: "delivered" as const, message: row, status: 200 })),
        () => "unused",
      );
      expect(pg.fsyncs()).toBe(before);
      // Both were applied all the same, and the next commit that waits for the disk takes them with it.
      expect(await sql`SELECT id FROM qstash_messages WHERE id = ANY(${ids})`).toHaveLength(0);
      const [logged] = await sql`SELECT count(*)::int AS n FROM qstash_events WHERE message_id = ANY(${ids})
        AND state = 'DELIVERED'`;
      expect(logged?.n).toBe(3);
    } finally {
      await sql.end();
      await pg.stop();
    }
  }, 30_000);

  test("in process, a client that leaves mid-transaction leaves nothing behind", async () => {
    const pg = await startEmbeddedPostgres({ dataDir });
    try {
      const first = await connect({ url: pg.url, max: 1, socket: pg.socket });
      await first`CREATE TABLE IF NOT EXISTS wire_left (id int PRIMARY KEY)`;
      await first`TRUNCATE wire_left`;
      const reserved = await first.reserve();
      await reserved`BEGIN`;
      await reserved`INSERT INTO wire_left VALUES (1)`;
      // The pool closes its connection without COMMIT: the shared backend rolls it back.
      reserved.release();
      await first.end({ timeout: 0 });
      const next = await connect({ url: pg.url, max: 1, socket: pg.socket });
      const rows = await next`SELECT id FROM wire_left`;
      expect(rows.length).toBe(0);
      await next.end();
    } finally {
      await pg.stop();
    }
  }, 30_000);

  test("a schema asked for on PGlite is refused before anything starts (PGlite would use public)", async () => {
    await expect(startBroker({ port: 0, dataDir, schema: "elsewhere" })).rejects.toThrow(
      /schema needs databaseUrl/,
    );
    await expect(
      startNode({
        config: parseConfig({ HOST: "127.0.0.1", PORT: "0", EDGEWISE_DATA_DIR: dataDir }),
        actors: [],
        schema: "elsewhere",
        log: () => {},
      }),
    ).rejects.toThrow(/schema option needs DATABASE_URL/);
  });

  test("the broker works on it, and a waiting message survives a restart", async () => {
    let broker = await startBroker({ port: 0, dataDir });
    // Its own PGlite has one connection: more deliveries in flight would only queue behind it.
    expect(broker.deliveryConcurrency).toBe(64);
    const client = () => new Client({ baseUrl: broker.url, token: broker.token, retry: false });
    const url = destination.url("/embedded");
    const now = await client().publishJSON({ url, body: { now: true } });
    const later = await client().publishJSON({ url, body: { later: true }, delay: "1d" });
    await waitFor(() => destination.of(now.messageId).length === 1, 5000);
    const [got] = destination.of(now.messageId);
    const receiver = new Receiver({
      currentSigningKey: broker.currentSigningKey,
      nextSigningKey: broker.nextSigningKey,
    });
    expect(
      await receiver.verify({
        signature: got?.headers["upstash-signature"] ?? "",
        body: got?.body ?? "",
        url,
      }),
    ).toBe(true);
    await broker.stop();

    broker = await startBroker({ port: 0, dataDir });
    try {
      expect(await client().messages.get(later.messageId)).toMatchObject({ body: '{"later":true}' });
      const states = (await client().logs({ messageIds: [now.messageId] })).logs.map((l) => l.state);
      expect(states).toEqual(["DELIVERED", "ACTIVE", "CREATED"]);
      expect(await client().messages.cancel(later.messageId)).toEqual({ cancelled: 1 });
    } finally {
      await broker.stop();
    }
  }, 20_000);

  test("the WAL writer flushes commits made without waiting for the disk, as a server's walwriter does", async () => {
    const pg = await startEmbeddedPostgres({ dataDir, sync: "NORMAL" });
    const sql = await connect({ url: pg.url, max: pg.maxConnections, socket: pg.socket });
    const walWriter = new WalWriter(sql);
    try {
      await sql`CREATE TABLE IF NOT EXISTS wal_check (id int PRIMARY KEY)`;
      await sql`TRUNCATE wal_check`;
      const unflushed = async () => {
        const [row] = await sql<{ behind: boolean }[]>`
          SELECT pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn() AS behind`;
        return row?.behind;
      };
      await sql`INSERT INTO wal_check VALUES (1) RETURNING ${relaxedCommit(sql)}`;
      // PGlite runs no WAL writer: the relaxed commit's WAL waits in its memory...
      expect(await unflushed()).toBe(true);
      await walWriter.flush();
      // ...until the writer's commit takes it to the file, in order.
      expect(await unflushed()).toBe(false);
      expect(walWriter.flushes).toBe(1);
      await walWriter.flush();
      expect(walWriter.flushes).toBe(1);
    } finally {
      await walWriter.stop();
      await sql.end();
      await pg.stop();
    }
  }, 30_000);

  test("SIGKILL after a quiet spell on PGlite: what was delivered before it is not delivered again", async () => {
    const port = restartablePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const start = () => startBrokerProcess(port);
    const receiver = startReceiver();
    const first = await start();
    const client = new Client({ baseUrl, token: DEV_TOKEN, retry: false });
    const accepted = (
      await client.batch(Array.from({ length: 5 }, (_, n) => ({ url: receiver.url(), body: String(n) })))
    ).map((r) => (r as { messageId: string }).messageId);
    await waitFor(() => receiver.deliveries.length >= 5, 10_000, "5 deliveries");
    // The receiver takes a delivery before it answers; the broker removes the message once the answer is back.
    // Each removal committed first (a 404), so that the quiet spell starts after the last of them.
    const removed = async () => {
      for (const id of accepted) {
        const answer = await fetch(`${baseUrl}/v2/messages/${id}`, {
          headers: { authorization: `Bearer ${DEV_TOKEN}` },
        });
        if (answer.status !== 404) return false;
      }
      return true;
    };
    await waitFor(removed, 10_000, "the 5 removals");
    // Quiet for longer than the writer's period: no publish came to carry the removals to the disk.
    await Bun.sleep(600);
    first.kill("SIGKILL");
    await first.exited;
    const second = await start();
    try {
      // A lost removal is redelivered at once at the start; give it the time it would take.
      await Bun.sleep(1_000);
      expect(receiver.deliveries.map((d) => d.messageId).sort()).toEqual([...accepted].sort());
      for (const id of accepted) {
        const waiting = await fetch(`${baseUrl}/v2/messages/${id}`, {
          headers: { authorization: `Bearer ${DEV_TOKEN}` },
        });
        expect({ id, status: waiting.status }).toEqual({ id, status: 404 });
      }
    } finally {
      second.kill("SIGTERM");
      await second.exited;
      receiver.stop();
    }
  }, 45_000);

  test("SIGKILL mid-stream on PGlite: every accepted message arrives after a restart", async () => {
    const port = restartablePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const start = () => startBrokerProcess(port, { QSTASH_DELIVERY_CONCURRENCY: "4" });
    const slow = startReceiver(async () => {
      await Bun.sleep(20);
      return new Response("ok");
    });
    const first = await start();
    const client = new Client({ baseUrl, token: DEV_TOKEN, retry: false });
    const results = await client.batch(
      Array.from({ length: 100 }, (_, n) => ({ url: slow.url(), body: String(n) })),
    );
    const accepted = results.map((r) => (r as { messageId: string }).messageId);
    await waitFor(() => slow.deliveries.length >= 20, 10_000, "20 deliveries");
    first.kill("SIGKILL");
    await first.exited;
    expect(new Set(slow.deliveries.map((d) => d.messageId)).size).toBeLessThan(100);
    const second = await start();
    try {
      const seen = () => new Set(slow.deliveries.map((d) => d.messageId));
      await waitFor(() => seen().size >= 100, 20_000, "100 unique message ids");
      expect([...seen()].sort()).toEqual([...accepted].sort());
    } finally {
      second.kill("SIGTERM");
      await second.exited;
      slow.stop();
    }
  }, 45_000);
});
