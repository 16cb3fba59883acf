// The reference system on a Bun node with embedded defaults, on a data dir the test owns (so it can restart on it).
import { type EdgewiseNode, startNode } from "../../deploy/bun/node.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { parseConfig } from "../../shared/config/index.ts";

type NodeOptions = Parameters<typeof startNode>[0];

/**
 * 127.0.0.1 on a free port, tracing off and logs dropped; `env` adds or overrides settings, `options` the node's
 * own options (a broker time scale, the drain).
 */
export function startLocalNode(
  dataDir: string,
  env: Record<string, string> = {},
  options: Partial<Omit<NodeOptions, "config">> = {},
): Promise<EdgewiseNode> {
  return startNode({
    config: parseConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      EDGEWISE_DATA_DIR: dataDir,
      EDGEWISE_TRACING: "off",
      ...env,
    }),
    ...referenceSystem(),
    log: () => {},
    ...options,
  });
}
