// The Bun entry behind `npm start`: configuration from the environment, then one self-hosted node.
import { configOrExit } from "../../deploy/config.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { stopOnSignals } from "../../deploy/shutdown.ts";
import { startNode } from "../../deploy/bun/node.ts";

const config = configOrExit();
const node = await startNode({ config, ...referenceSystem() });
console.log(`[edgewise] listening on ${node.url} (data in ${config.EDGEWISE_DATA_DIR})`);
console.log(`[edgewise] queue: ${node.broker ? `embedded broker at ${node.brokerUrl}` : node.brokerUrl}`);
if (node.adminToken) {
  // Printed only for the node's own key (embedded defaults): an operator's JWT_SECRET never yields a token here.
  console.log(`[edgewise] admin token (24 h, local development): ${node.adminToken}`);
  console.log(
    `[edgewise] try: curl -X POST ${node.url}/v1/counters/demo/increment -H "authorization: Bearer ${node.adminToken}" -H 'content-type: application/json' -d '{"by":1}'`,
  );
}

stopOnSignals(
  () => node.stop(),
  (signal) => console.log(`[edgewise] ${signal}: draining and closing`),
);
