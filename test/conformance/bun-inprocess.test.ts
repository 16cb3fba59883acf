// Conformance of the local host in this Bun process; a "crash" here is a restart on the same file
// (the SIGKILL variant is bun-process.test.ts).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { RecordingTransport } from "../support/memory-transport.ts";
import type { ConformanceDriver } from "./cases.ts";
import { fixtureActors } from "./fixtures.ts";
import type { ControlTarget } from "./protocol.ts";
import { runConformance } from "./run.ts";
import { localTarget } from "./local/target.ts";

async function startInProcess(): Promise<ConformanceDriver> {
  const file = join(mkdtempSync(join(tmpdir(), "edgewise-conf-inproc-")), "actors.db");
  let transport = new RecordingTransport();
  const boot = (profileVersion: 1 | 2) =>
    new LocalActorHost({
      actors: fixtureActors(profileVersion),
      db: openBunSqlite(file),
      transport,
      pollMs: 100,
      relayPolicy: { batchSize: 256, baseDelayMs: 50, maxDelayMs: 500 },
      onBackgroundError: () => {},
    }).start();
  let host = boot(1);
  let target: ControlTarget = localTarget(host, transport);
  return {
    name: "bun-inprocess",
    ask: (...args) => target.ask(...args),
    receive: (envelope) => target.receive(envelope),
    inspect: (type, key) => target.inspect(type, key),
    sent: () => target.sent(),
    setTransportFailing: (failing) => target.setTransportFailing(failing),
    async crash(options = {}) {
      await host.stop();
      transport = new RecordingTransport();
      host = boot(options.profileVersion ?? 1);
      target = localTarget(host, transport);
    },
    close: () => host.stop(),
  };
}

runConformance("local host, in process on Bun", startInProcess);
