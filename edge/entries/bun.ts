// The Bun entry behind `npm start`: config from the environment, the local host on SQLite, the app on Bun.serve.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { counterActor } from "../../actors/examples/counter.ts";
import { parseConfig } from "../../shared/config/index.ts";
import { isEdgewiseError } from "../../shared/errors/index.ts";
import { createApp } from "../app.ts";

function loadConfig() {
  try {
    return parseConfig(process.env);
  } catch (error) {
    console.error(isEdgewiseError(error) ? error.message : error);
    process.exit(78); // EX_CONFIG
  }
}

const config = loadConfig();
const dataDir = resolve(config.EDGEWISE_DATA_DIR);
mkdirSync(dataDir, { recursive: true });

const host = new LocalActorHost({
  actors: [counterActor],
  db: openBunSqlite(join(dataDir, "actors.db"), config.EDGEWISE_SQLITE_SYNC),
  inboxRetentionMs: config.EDGEWISE_INBOX_RETENTION,
  idleEvictMs: config.EDGEWISE_IDLE_EVICT,
}).start();

const server = Bun.serve({
  port: config.PORT,
  hostname: "0.0.0.0",
  fetch: createApp({ actors: host }).fetch,
});
console.log(`[edgewise] listening on http://127.0.0.1:${server.port} (data in ${dataDir})`);
console.log(
  `[edgewise] try: curl -X POST http://127.0.0.1:${server.port}/v1/counters/demo/increment -d '{"by":1}'`,
);

async function shutdown(signal: string) {
  console.log(`[edgewise] ${signal}: draining and closing`);
  await server.stop();
  await host.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
