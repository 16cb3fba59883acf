// A conformance host process on Deno: the local host on node:sqlite, served over the control protocol.
import { join } from "node:path";
import process from "node:process";
import { LocalActorHost } from "../../../actors/hosts/local/index.ts";
import { openNodeSqlite } from "../../../actors/hosts/local/sqlite-node.ts";
import { RecordingTransport } from "../../support/memory-transport.ts";
import { fixtureActors } from "../fixtures.ts";
import { controlHandler } from "../protocol.ts";
import { localTarget } from "./target.ts";

const dataDir = process.env.EDGEWISE_DATA_DIR ?? "./.edgewise-conformance";
const transport = new RecordingTransport();
transport.failing = process.env.TRANSPORT_FAILING === "1";
const host = new LocalActorHost({
  actors: fixtureActors(process.env.PROFILE_VERSION === "2" ? 2 : 1),
  db: openNodeSqlite(join(dataDir, "actors.db")),
  transport,
  pollMs: 100,
  relayPolicy: { batchSize: 256, baseDelayMs: 50, maxDelayMs: 500 },
  onBackgroundError: () => {},
}).start();
// @ts-expect-error Deno global: this file runs only under Deno.
const server = Deno.serve(
  { port: Number(process.env.PORT ?? 0), hostname: "127.0.0.1", onListen: () => {} },
  controlHandler(localTarget(host, transport)),
);
console.log(`listening ${server.addr.port}`);
