// The embedded path: PGlite behind pglite-socket as the broker's store, across a clean restart and a SIGKILL.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client, Receiver } from "@upstash/qstash";
import postgres from "postgres";
import { DEV_TOKEN, startBroker } from "../../deploy/local/broker/index.ts";
import { startEmbeddedPostgres } from "../../deploy/local/pglite/index.ts";
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

describe("embedded PGlite", () => {
  test("startEmbeddedPostgres serves postgres.js over 127.0.0.1", async () => {
    const pg = await startEmbeddedPostgres({ dataDir });
    const sql = postgres(pg.url, { max: pg.maxConnections, onnotice: () => {} });
    try {
      expect(pg.url).toStartWith("postgres://postgres@127.0.0.1:");
      const [row] = await sql`SELECT 1 + 1 AS two`;
      expect(row?.two).toBe(2);
    } finally {
      await sql.end();
      await pg.stop();
    }
  }, 30_000);

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

  test("SIGKILL mid-stream on PGlite: every accepted message arrives after a restart", async () => {
    const port = 31_000 + Math.floor(Math.random() * 9_000);
    const baseUrl = `http://127.0.0.1:${port}`;
    const { DATABASE_URL: _ignored, ...env } = process.env;
    const start = async () => {
      const child = Bun.spawn([process.execPath, join(root, "deploy/local/broker/main.ts")], {
        cwd: root,
        env: {
          ...env,
          EDGEWISE_DATA_DIR: dataDir,
          QSTASH_PORT: String(port),
          QSTASH_DELIVERY_CONCURRENCY: "4",
        },
        stdout: "ignore",
        stderr: "pipe",
      });
      children.push(child);
      await waitFor(
        async () => {
          const headers = { authorization: `Bearer ${DEV_TOKEN}` };
          return (await fetch(`${baseUrl}/v2/keys`, { headers }).catch(() => undefined))?.ok === true;
        },
        15_000,
        "the broker process",
      ).catch(async (error) => {
        child.kill("SIGKILL");
        throw new Error(`${error}: ${await new Response(child.stderr).text()}`);
      });
      return child;
    };
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
