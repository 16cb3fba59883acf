// Starts the reference system on the Bun host for the commerce suites: startNode with the real Postgres and broker.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { commerce } from "../../deploy/commerce.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import type { Resolve } from "../../actors/commerce/webhooks/index.ts";
import { postWithNodeHttp } from "../../actors/commerce/webhooks/node-post.ts";
import { parseConfig } from "../../shared/config/index.ts";
import type { Logger } from "../../shared/telemetry/log/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { CommerceClient } from "./client.ts";

export interface CommerceNode {
  node: EdgewiseNode;
  client: CommerceClient;
  jwtSecret: string;
  schema: string;
  /** The node's EDGEWISE_DATA_DIR (actors.db, traces.db), removed by `stop`. */
  dataDir: string;
  stop(): Promise<void>;
}

/** One node on its own Postgres schema and data dir; broker retries shortened 100x. */
export async function startCommerceNode(
  name: string,
  env: Record<string, string> = {},
  /**
   * `log` receives the node's JSON log lines (default: dropped); `logger`, a logger of the test's, takes precedence
   * (its level decides which lines are written, the access log's included). `resolve` replaces the system resolver the webhook
   * SSRF guard asks, so a test can map names to the addresses it wants. `postgresTimeoutMs`: the node's (startNode's).
   */
  options: {
    log?: (line: string) => void;
    logger?: Logger;
    resolve?: Resolve;
    postgresTimeoutMs?: number;
  } = {},
): Promise<CommerceNode> {
  const schema = uniqueSchema(name);
  const dataDir = mkdtempSync(join(tmpdir(), `edgewise-${name}-`));
  const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
  const node = await startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: TEST_DATABASE_URL,
      EDGEWISE_DATA_DIR: dataDir,
      JWT_SECRET: jwtSecret,
      RATE_LIMIT: "1000000/60s",
      WEBHOOKS_ALLOW_PRIVATE: "1",
      ...env,
    }),
    ...referenceSystem(),
    ...(options.resolve ? { extend: commerce({ resolve: options.resolve, post: postWithNodeHttp }) } : {}),
    schema,
    brokerTimeScale: 0.01,
    log: options.log ?? (() => {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.postgresTimeoutMs !== undefined ? { postgresTimeoutMs: options.postgresTimeoutMs } : {}),
  });
  return {
    node,
    client: new CommerceClient({ base: node.url, jwtSecret }),
    jwtSecret,
    schema,
    dataDir,
    async stop() {
      await node.stop();
      await dropSchema(schema);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A gateway in front of `actorHost`, as the README's split deployment runs one: the same Postgres schema and queue,
 * its own data dir, and the actors reached at the host's URL (its node needs ACTOR_HOST_SECRET, passed here too).
 */
export async function startCommerceGateway(
  actorHost: CommerceNode,
  actorHostSecret: string,
  /** Added to its environment; a name mapped to undefined is left out. */
  env: Record<string, string | undefined> = {},
  /** `log` receives the gateway's JSON log lines (default: dropped). */
  options: { log?: (line: string) => void } = {},
): Promise<CommerceNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-gateway-"));
  const broker = actorHost.node.broker;
  const environment: Record<string, string | undefined> = {
    HOST: "127.0.0.1",
    PORT: "0",
    DATABASE_URL: TEST_DATABASE_URL,
    EDGEWISE_DATA_DIR: dataDir,
    JWT_SECRET: actorHost.jwtSecret,
    RATE_LIMIT: "1000000/60s",
    ACTOR_HOST_URL: actorHost.node.url,
    ACTOR_HOST_SECRET: actorHostSecret,
    QSTASH_URL: actorHost.node.brokerUrl,
    QSTASH_TOKEN: broker?.token ?? "",
    QSTASH_CURRENT_SIGNING_KEY: broker?.currentSigningKey ?? "",
    QSTASH_NEXT_SIGNING_KEY: broker?.nextSigningKey ?? "",
    ...env,
  };
  const node = await startNode({
    config: parseConfig(
      Object.fromEntries(Object.entries(environment).filter(([, value]) => value !== undefined)),
    ),
    ...referenceSystem(),
    ...(environment.DATABASE_URL ? { schema: actorHost.schema } : {}),
    log: options.log ?? (() => {}),
  }).catch((error: unknown) => {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  });
  return {
    node,
    client: new CommerceClient({ base: node.url, jwtSecret: actorHost.jwtSecret }),
    jwtSecret: actorHost.jwtSecret,
    schema: actorHost.schema,
    dataDir,
    async stop() {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
