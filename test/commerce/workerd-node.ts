// Starts the reference system on workerd for the commerce suites: the production Worker (root wrangler.toml) under
// `wrangler dev`, with the local broker and the real Postgres, each on a schema of its own. Only 127.0.0.1.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Broker, startBroker } from "../../deploy/local/broker/index.ts";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { type Started, startProcess } from "../e2e/process.ts";
import { freePort, wranglerDev, wranglerEnv } from "../support/wrangler.ts";
import { CommerceClient } from "./client.ts";

const root = join(import.meta.dir, "../..");

export interface CommerceWorker {
  worker: Started;
  broker: Broker;
  client: CommerceClient;
  jwtSecret: string;
  /** wrangler's --persist-to: where workerd keeps each Durable Object's SQLite file. */
  persistTo: string;
  /** The Worker's Postgres schema (DATABASE_URL's search_path). */
  schema: string;
  /** Kills wrangler (and workerd), stops the broker, drops both schemas and the persisted state. */
  stop(): Promise<void>;
}

/**
 * The Worker with the queue (the local broker, retries shortened 100x unless `brokerTimeScale` says), Postgres and
 * a JWT secret; `vars` adds or overrides `--var`s. Ready when it returns: /readyz passed and the commerce tables exist.
 */
export async function startCommerceWorker(
  name: string,
  /** Or made from the broker (a front of it as QSTASH_URL, say), once it runs. */
  vars: Record<string, string> | ((broker: Broker) => Record<string, string>) = {},
  /** More `wrangler dev` flags, e.g. `--test-scheduled` (GET /__scheduled runs the cron). */
  flags: string[] = [],
  /** The broker's retry backoff multiplier: 0.01 unless a test needs its real delays (1). */
  brokerTimeScale = 0.01,
): Promise<CommerceWorker> {
  const brokerSchema = uniqueSchema(`${name}_broker`);
  const workerSchema = uniqueSchema(name);
  const persistTo = mkdtempSync(join(tmpdir(), `edgewise-${name}-`));
  const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
  // The Worker's Postgres: postgres.js sends URL parameters it does not know as startup parameters.
  const databaseUrl = `${TEST_DATABASE_URL}${TEST_DATABASE_URL.includes("?") ? "&" : "?"}search_path=${workerSchema}`;
  let broker: Broker | undefined;
  let worker: Started | undefined;
  const stop = async () => {
    // EDGEWISE_TEST_WORKER_LOG=1 prints what wrangler and the Worker logged (requests, relay errors).
    if (process.env.EDGEWISE_TEST_WORKER_LOG === "1") console.log(worker?.output());
    await worker?.kill(); // SIGKILL to wrangler's whole process group: workerd runs as its child
    await broker?.stop();
    await dropSchema(workerSchema);
    await dropSchema(brokerSchema);
    rmSync(persistTo, { recursive: true, force: true });
  };
  try {
    broker = await startBroker({
      port: 0,
      databaseUrl: TEST_DATABASE_URL,
      schema: brokerSchema,
      timeScale: brokerTimeScale,
      log: () => {},
    });
    await createSchema(workerSchema);
    const queue = broker;
    // `wrangler dev` on a free port; a port taken between picking and binding gets another try.
    for (let attempt = 1; !worker; attempt++) {
      const port = freePort();
      try {
        worker = await startProcess(
          wranglerDev({
            port,
            persistTo,
            // Throwaway test values; production secrets go through `wrangler secret put`.
            vars: {
              QSTASH_URL: queue.url,
              QSTASH_TOKEN: queue.token,
              QSTASH_CURRENT_SIGNING_KEY: queue.currentSigningKey,
              QSTASH_NEXT_SIGNING_KEY: queue.nextSigningKey,
              PUBLIC_URL: `http://127.0.0.1:${port}`,
              DATABASE_URL: databaseUrl,
              JWT_SECRET: jwtSecret,
              RATE_LIMIT: "1000000/60s",
              WEBHOOKS_ALLOW_PRIVATE: "1",
              ...(typeof vars === "function" ? vars(queue) : vars),
            },
            extra: flags,
          }),
          { cwd: root, env: wranglerEnv, pattern: /Ready on (https?:\/\/[\w.]+:\d+)/, timeoutMs: 40_000 },
        );
      } catch (error) {
        if (attempt >= 3 || !/address already in use|EADDRINUSE/i.test(String(error))) throw error;
      }
    }
    const client = new CommerceClient({ base: worker.match, jwtSecret });
    const ready = await fetch(`${worker.match}/readyz`);
    if (!ready.ok) throw new Error(`the Worker is not ready: ${await ready.text()}\n${worker.output()}`);
    // The first request that may touch Postgres creates the commerce tables: pay for it before the clock runs.
    const warm = await client.call("GET", "/v1/orders?customerId=warmup");
    if (warm.status !== 200) throw new Error(`warm-up: HTTP ${warm.status} ${JSON.stringify(warm.body)}`);
    return { worker, broker, client, jwtSecret, persistTo, schema: workerSchema, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
