// A reference node a test restarts on one data dir and Postgres schema with new settings each time (rotation tests).
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { captureSink, createLogger } from "../../shared/telemetry/log/index.ts";
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from "../broker/helpers.ts";

export interface RestartableNode {
  /** The running node's URL ("" when none runs). */
  readonly url: string;
  readonly schema: string;
  /** Stops the running node, if any, and starts one with `env`; returns its log lines at info, kept as they come. */
  restart(env?: Record<string, string>): Promise<string[]>;
  stop(): Promise<void>;
}

/** Registers its own `afterAll`: the node stopped, its schema dropped and its data dir removed. */
export function restartableNode(name: string): RestartableNode {
  const schema = uniqueSchema(name);
  const dataDir = mkdtempSync(join(tmpdir(), `edgewise-${name}-`));
  let node: EdgewiseNode | undefined;
  afterAll(async () => {
    await node?.stop();
    await dropSchema(schema);
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    get url() {
      return node?.url ?? "";
    },
    schema,
    async restart(env = {}) {
      await node?.stop();
      node = undefined;
      const capture = captureSink();
      node = await startNode({
        config: parseConfig({
          HOST: "127.0.0.1",
          PORT: "0",
          DATABASE_URL: TEST_DATABASE_URL,
          EDGEWISE_DATA_DIR: dataDir,
          ...env,
        }),
        ...referenceSystem(),
        schema,
        brokerTimeScale: 0.01,
        logger: createLogger({ level: "info", sink: capture.sink }),
      });
      return capture.lines;
    },
    async stop() {
      await node?.stop();
      node = undefined;
    },
  };
}
