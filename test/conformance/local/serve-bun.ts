// A conformance host process on Bun: the local host on bun:sqlite, served over the control protocol.
import { join } from "node:path";
import { LocalActorHost } from "../../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../../actors/hosts/local/sqlite-bun.ts";
import { RecordingTransport } from "../../support/memory-transport.ts";
import { fixtureActors } from "../fixtures.ts";
import { controlHandler } from "../protocol.ts";
import { localTarget } from "./target.ts";

const dataDir = process.env.EDGEWISE_DATA_DIR ?? "./.edgewise-conformance";
const transport = new RecordingTransport();
transport.failing = process.env.TRANSPORT_FAILING === "1";
const host = new LocalActorHost({
  actors: fixtureActors(process.env.PROFILE_VERSION === "2" ? 2 : 1),
  db: openBunSqlite(join(dataDir, "actors.db")),
  transport,
  pollMs: 100,
  relayPolicy: { batchSize: 256, baseDelayMs: 50, maxDelayMs: 500 },
  onBackgroundError: () => {},
}).start();
const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  hostname: "127.0.0.1",
  fetch: controlHandler(localTarget(host, transport)),
});
console.log(`listening ${server.port}`);
