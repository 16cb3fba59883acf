// The Deno entry behind `npm run start:deno`: the same node as on Bun, with Deno.serve and node:sqlite.
import { exitWithHelp, nodeHelp } from "../../deploy/cli-help.ts";
import { configOrExit } from "../../deploy/config.ts";
import { referenceSystem } from "../../deploy/reference.ts";
import { stopOnSignals } from "../../deploy/shutdown.ts";
import { exitOnStartFailure } from "../../deploy/start-failure.ts";
import { openNodeSqlite } from "../../actors/hosts/local/sqlite-node.ts";
import { denoServe } from "../../deploy/deno/serve.ts";
import { nodeTcpRedis } from "../middleware/rate-limit/redis-tcp-node.ts";
import { startNode } from "../../deploy/node.ts";
import { firstRunLines, listeningLine, queueLine } from "../../deploy/try-it.ts";

exitWithHelp(nodeHelp("run start:deno"));
const config = configOrExit();
const node = await startNode({
  config,
  ...referenceSystem(),
  serve: denoServe,
  platform: "deno",
  openActorDb: openNodeSqlite,
  // REDIS_URL over ioredis: Deno has no built-in Redis client (Bun's entry uses Bun's).
  tcpRedis: (url) => nodeTcpRedis({ url }),
}).catch(exitOnStartFailure(config));
console.log(listeningLine(node.url, config.HOST, `Deno, data in ${config.EDGEWISE_DATA_DIR}`));
console.log(queueLine(node));
if (node.adminToken) console.log(firstRunLines(node.url, node.adminToken).join("\n"));

stopOnSignals(
  () => node.stop(),
  (signal) => console.log(`[edgewise] ${signal}: draining and closing`),
);
