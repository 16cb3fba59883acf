// Starts the reference system on Deno for the commerce suites: `npm run start:deno`'s entry (edge/entries/deno.ts)
// as a child process, with the real Postgres on a schema of its own and its embedded broker. Only 127.0.0.1.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createSchema, dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { denoEntryCommand, type Started, startProcess } from "../e2e/process.ts";
import { CommerceClient } from "./client.ts";

const root = resolve(import.meta.dir, "../..");

export interface CommerceDenoNode {
  process: Started;
  client: CommerceClient;
  jwtSecret: string;
  schema: string;
  /** Stops the node (SIGTERM, then SIGKILL), drops its schema and removes its data dir. */
  stop(): Promise<void>;
}

/**
 * The node as an operator runs it: configuration from the environment only, so its tables (the broker's too) land
 * in `schema` through a `search_path` startup parameter in DATABASE_URL, and the broker retries at its real backoff
 * (the Bun harness shortens it 100x; nothing in a passing lifecycle run waits on a retry). `env` adds or overrides.
 */
export async function startCommerceDenoNode(
  name: string,
  env: Record<string, string> = {},
): Promise<CommerceDenoNode> {
  const schema = uniqueSchema(name);
  const dataDir = mkdtempSync(join(tmpdir(), `edgewise-${name}-`));
  const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
  let node: Started | undefined;
  const stop = async () => {
    // EDGEWISE_TEST_NODE_LOG=1 prints what the node logged (requests, relay and delivery errors).
    if (process.env.EDGEWISE_TEST_NODE_LOG === "1") console.log(node?.output());
    if (node) await stopGracefully(node);
    await dropSchema(schema);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await createSchema(schema);
    node = await startProcess(denoEntryCommand(root), {
      cwd: root,
      env: {
        HOST: "127.0.0.1",
        PORT: "0",
        DATABASE_URL: `${TEST_DATABASE_URL}${TEST_DATABASE_URL.includes("?") ? "&" : "?"}search_path=${schema}`,
        EDGEWISE_DATA_DIR: dataDir,
        JWT_SECRET: jwtSecret,
        RATE_LIMIT: "1000000/60s",
        WEBHOOKS_ALLOW_PRIVATE: "1",
        NO_COLOR: "1",
        ...env,
      },
      pattern: /listening on (https?:\/\/\S+)/,
      timeoutMs: 60_000,
    });
    const client = new CommerceClient({ base: node.match, jwtSecret });
    const ready = await fetch(`${node.match}/readyz`);
    if (!ready.ok) throw new Error(`the Deno node is not ready: ${await ready.text()}\n${node.output()}`);
    return { process: node, client, jwtSecret, schema, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** SIGTERM, so the node drains and closes its pool; SIGKILL to the whole group if it has not exited within 10 s. */
async function stopGracefully(node: Started): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill("SIGTERM");
  const exited = await Promise.race([
    node.child.exited.then(() => true),
    Bun.sleep(10_000).then(() => false),
  ]);
  if (!exited) await node.kill("SIGKILL");
}
