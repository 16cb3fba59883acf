// Test helpers for the broker: a recording receiver on 127.0.0.1, a broker on its own Postgres schema, polling.
import { Client, Receiver } from "@upstash/qstash";
import postgres from "postgres";
import type { Sql } from "../../deploy/local/broker/db.ts";
import { type Broker, type BrokerOptions, startBroker } from "../../deploy/local/broker/index.ts";
import { type FaultProxy, Modes } from "../chaos/fault-proxy.ts";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Where the test Postgres listens, for a fault proxy in front of it. */
export function postgresTarget(): { host: string; port: number } {
  const url = new URL(TEST_DATABASE_URL);
  return { host: url.hostname, port: Number(url.port || 5432) };
}

/**
 * Mutes `proxy` (requests pass, replies are lost) while a query runs, so its connection fails, and makes another
 * query in that failure's handler: the moment postgres.js 3.4 stranded such a query for good. Resolves with what the
 * second query settled with, or "hung" after 5 s.
 */
export async function queryMadeAtTheError(sql: Sql, proxy: FaultProxy): Promise<unknown> {
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
  return Promise.race([next, Bun.sleep(5_000).then(() => "hung")]);
}

export interface Delivery {
  at: number;
  method: string;
  url: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  messageId: string;
  retried: number;
}

export type Responder = (delivery: Delivery, nth: number) => Response | Promise<Response>;

/** A destination that records every request it gets and answers with `respond` (default 200). */
export function startReceiver(respond: Responder = () => new Response("ok")) {
  const deliveries: Delivery[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const delivery: Delivery = {
        at: performance.now(),
        method: req.method,
        url: req.url,
        path: url.pathname + url.search,
        headers: Object.fromEntries(req.headers),
        body: await req.text(),
        messageId: req.headers.get("upstash-message-id") ?? "",
        retried: Number(req.headers.get("upstash-retried") ?? "-1"),
      };
      deliveries.push(delivery);
      return await respond(delivery, deliveries.filter((d) => d.messageId === delivery.messageId).length);
    },
  });
  return {
    deliveries,
    url: (path = "/hook") => `http://127.0.0.1:${server.port}${path}`,
    of: (messageId: string) => deliveries.filter((d) => d.messageId === messageId),
    stop: () => server.stop(true),
  };
}

/** A unique schema for one test file, dropped by `dropSchema`. */
export const uniqueSchema = (name: string) =>
  `broker_test_${name}_${process.pid}_${Math.floor(Math.random() * 1e6)}`.toLowerCase();

/** Creates `schema`, for a node started as a process that finds it through a `search_path` in DATABASE_URL. */
export async function createSchema(schema: string): Promise<void> {
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`;
  } finally {
    await sql.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
  } finally {
    await sql.end();
  }
}

export async function startTestBroker(schema: string, options: BrokerOptions = {}): Promise<Broker> {
  return await startBroker({ port: 0, databaseUrl: TEST_DATABASE_URL, schema, timeScale: 0.001, ...options });
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await Bun.sleep(5);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Raw call to the broker's HTTP API (for what the SDK does not expose, and for bad input). */
export async function call(broker: Broker, path: string, init: RequestInit & { token?: string | null } = {}) {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? broker.token : init.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  const response = await fetch(`${broker.url}${path}`, { ...init, headers });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body };
}

/** The official SDK against a broker: a Client with its token (no SDK retries) and a Receiver with its keys. */
export function sdkFor(broker: Broker): { client: Client; receiver: Receiver } {
  return {
    client: new Client({ baseUrl: broker.url, token: broker.token, retry: false }),
    receiver: new Receiver({
      currentSigningKey: broker.currentSigningKey,
      nextSigningKey: broker.nextSigningKey,
    }),
  };
}
