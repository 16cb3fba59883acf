// What chaos scenarios run: a full node in this process (log captured), or a node or a broker as a child process
// that can be SIGKILLed; each on its own Postgres schema, with a direct pool for the checks.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN } from "../../deploy/local/broker/index.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { CommerceClient } from "../commerce/client.ts";
import { type Started, startProcess } from "../e2e/process.ts";
import { REQUEST_TIMEOUT_MS } from "./load.ts";

export const root = resolve(import.meta.dir, "../..");
export { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN, TEST_DATABASE_URL };

/**
 * The broker's retry backoff is QStash's (attempts at 0, 12 s, 160 s and 33 min after the first), compressed by
 * this factor. 0.02 puts the last retry 39 s after the first attempt: a 30 s fault uses most of the retry budget,
 * a far harsher ratio than a real 30 s outage against 33 minutes. CHAOS_TIME_SCALE overrides it.
 */
export const BROKER_TIME_SCALE = Number(process.env.CHAOS_TIME_SCALE ?? "") || 0.02;

/** A pool on `schema` that does not go through any proxy: for the checks. */
export function schemaPool(schema: string): postgres.Sql {
  return postgres(TEST_DATABASE_URL, { max: 2, onnotice: () => {}, connection: { search_path: schema } });
}

/** The environment every chaos node shares: a known JWT secret, no rate limit to speak of, short timeouts. */
export function baseEnv(dataDir: string, jwtSecret: string): Record<string, string> {
  return {
    HOST: "127.0.0.1",
    EDGEWISE_DATA_DIR: dataDir,
    JWT_SECRET: jwtSecret,
    RATE_LIMIT: "1000000/60s",
    WEBHOOKS_ALLOW_PRIVATE: "1",
    REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_MS}ms`,
  };
}

export interface InProcessNode {
  node: EdgewiseNode;
  client: CommerceClient;
  schema: string;
  /** Everything the node logged, timestamped (the first 5,000 lines, then a count). */
  logs: Array<{ at: number; line: string }>;
  /** A direct pool on the node's schema. */
  sql: postgres.Sql;
  stop(): Promise<void>;
}

/**
 * Sends this process's console output into `into`, timestamped, instead of the terminal (the node's relays print a
 * stack per failed pass, thousands during a fault); lines starting with `[chaos]`, and all with CHAOS_DEBUG, still
 * print. Returns the function that restores the console.
 */
export function captureConsole(into: Array<{ at: number; line: string }>): () => void {
  const original = { log: console.log, warn: console.warn, error: console.error };
  const capture =
    (print: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      const text = args
        .map((arg) =>
          typeof arg === "string"
            ? arg
            : arg instanceof Error
              ? `${arg.name}: ${arg.message}`
              : Bun.inspect(arg),
        )
        .join(" ");
      const ours = text.startsWith("[chaos]");
      if (ours || process.env.CHAOS_DEBUG) print(...args);
      if (!ours && into.length < 5_000) into.push({ at: Date.now(), line: text.slice(0, 300) });
    };
  console.log = capture(original.log);
  console.warn = capture(original.warn);
  console.error = capture(original.error);
  return () => Object.assign(console, original);
}

/** A full node (startNode, the reference system) in this process, on its own schema and data dir. */
export async function startInProcessNode(
  name: string,
  env: Record<string, string> = {},
  options: { schema?: string; brokerTimeScale?: number } = {},
): Promise<InProcessNode> {
  const schema = options.schema ?? uniqueSchema(name);
  const dataDir = mkdtempSync(join(tmpdir(), `edgewise-chaos-${name}-`));
  const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
  const logs: Array<{ at: number; line: string }> = [];
  let dropped = 0;
  const restoreConsole = captureConsole(logs);
  let node: EdgewiseNode;
  try {
    node = await startNode({
      config: parseConfig({
        ...baseEnv(dataDir, jwtSecret),
        PORT: "0",
        DATABASE_URL: TEST_DATABASE_URL,
        ...env,
      }),
      ...referenceSystem(),
      schema,
      brokerTimeScale: options.brokerTimeScale ?? BROKER_TIME_SCALE,
      log: (line) => {
        if (logs.length < 5_000) logs.push({ at: Date.now(), line });
        else dropped++;
      },
    });
  } catch (error) {
    restoreConsole();
    throw error;
  }
  const sql = schemaPool(schema);
  return {
    node,
    client: new CommerceClient({ base: node.url, jwtSecret }),
    schema,
    logs,
    sql,
    async stop() {
      if (dropped > 0) logs.push({ at: Date.now(), line: `(${dropped} more lines)` });
      await node.stop();
      restoreConsole();
      await sql.end({ timeout: 5 });
      await dropSchema(schema);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until `url` answers (any status), or throws. */
export async function waitUp(url: string, timeoutMs = 30_000, init: RequestInit = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error(`${url} did not come up in ${timeoutMs} ms`);
}

/** The local broker (`npm run broker`) as a child process on `port`, with its tables in `schema`. */
export async function startBrokerProcess(options: {
  port: number;
  schema: string;
  timeScale?: number;
}): Promise<Started> {
  return await startProcess([process.execPath, join(root, "deploy/local/broker/main.ts")], {
    cwd: root,
    env: {
      DATABASE_URL: TEST_DATABASE_URL,
      QSTASH_DB_SCHEMA: options.schema,
      QSTASH_PORT: String(options.port),
      QSTASH_TIME_SCALE: String(options.timeScale ?? BROKER_TIME_SCALE),
      QSTASH_TOKEN: "",
      QSTASH_CURRENT_SIGNING_KEY: "",
      QSTASH_NEXT_SIGNING_KEY: "",
    },
    pattern: /broker running at (\S+)/,
    timeoutMs: 30_000,
  });
}

/** The broker settings a node needs to use a broker started with the development defaults. */
export const devBrokerEnv = (url: string) => ({
  QSTASH_URL: url,
  QSTASH_TOKEN: DEV_TOKEN,
  QSTASH_CURRENT_SIGNING_KEY: DEV_CURRENT_SIGNING_KEY,
  QSTASH_NEXT_SIGNING_KEY: DEV_NEXT_SIGNING_KEY,
});

/**
 * `npm start` (edge/entries/bun.ts) as a child process on `port`: Postgres is the test database with the node's
 * tables in `schema` (a `search_path` startup parameter in DATABASE_URL), the broker embedded unless `env` says.
 */
export async function startNodeProcess(options: {
  port: number;
  dataDir: string;
  schema: string;
  jwtSecret: string;
  env?: Record<string, string>;
}): Promise<Started> {
  return await startProcess([process.execPath, join(root, "edge/entries/bun.ts")], {
    cwd: root,
    env: {
      ...baseEnv(options.dataDir, options.jwtSecret),
      PORT: String(options.port),
      DATABASE_URL: `${TEST_DATABASE_URL}?search_path=${options.schema}`,
      ...options.env,
    },
    pattern: /listening on (\S+)/,
    timeoutMs: 60_000,
  });
}

export { createSchema, dropSchema, uniqueSchema };
