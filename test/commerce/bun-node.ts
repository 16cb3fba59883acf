// Starts the reference system on the Bun host for the commerce suites: startNode with the real Postgres and broker.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";
import { CommerceClient } from "./client.ts";

export interface CommerceNode {
  node: EdgewiseNode;
  client: CommerceClient;
  jwtSecret: string;
  schema: string;
  stop(): Promise<void>;
}

/** One node on its own Postgres schema and data dir; broker retries shortened 100x. */
export async function startCommerceNode(
  name: string,
  env: Record<string, string> = {},
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
    schema,
    brokerTimeScale: 0.01,
    log: () => {},
  });
  return {
    node,
    client: new CommerceClient({ base: node.url, jwtSecret }),
    jwtSecret,
    schema,
    async stop() {
      await node.stop();
      await dropSchema(schema);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
