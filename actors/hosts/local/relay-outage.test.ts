// The local host's relay during a queue outage: a large outbox from many actors waits for the breaker's probe.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { Dependencies } from "../../../shared/resilience/index.ts";
import { counter } from "../../../test/conformance/fixtures.ts";
import { QStashTransport } from "../../queue/qstash-transport.ts";
import { guardedTransport } from "../../runtime/index.ts";
import { LocalActorHost } from "./host.ts";
import { openBunSqlite } from "./sqlite-bun.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A loopback port nothing listens on: the broker is down (connections refused). */
function closedPort(): number {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = server.port as number;
  server.stop(true);
  return port;
}

describe("local relay during a queue outage", () => {
  test("once the breaker is open, the relay waits for its probe instead of marching through the outbox", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgewise-relay-outage-"));
    const file = join(dir, "actors.db");
    const transport = guardedTransport(
      new QStashTransport({
        baseUrl: `http://127.0.0.1:${closedPort()}`,
        token: "t",
        deliveryUrl: () => "http://127.0.0.1:1/_edgewise/deliver/counter/x",
      }),
      new Dependencies(), // the node's broker breaker: opens on 5 failures in a row, half-opens after 5 s
      "broker",
    );
    const host = new LocalActorHost({
      actors: [counter],
      db: openBunSqlite(file),
      transport,
      onBackgroundError: () => {},
    }).start();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => host.stop());

    // 1,500 actors with one message each: what an outage leaves behind (one order actor per order).
    const actors = 1_500;
    for (let from = 0; from < actors; from += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, n) =>
          host.ask({ type: "counter", key: `w${from + n}` }, "SendTo", { key: "sink", count: 1 }),
        ),
      );
    }
    await Bun.sleep(1_500);
    const reader = new Database(file, { readonly: true });
    const row = reader
      .query("SELECT COUNT(*) AS n, SUM(attempts > 0) AS tried, SUM(attempts) AS attempts FROM outbox")
      .get() as { n: number; tried: number; attempts: number };
    reader.close();
    expect(row.n).toBe(actors);
    // Before the fix every entry was read, refused by the open breaker and written back with its backoff (one
    // fsync each), a pass after another: the whole outbox, again at each probe, slowing every turn on the node.
    // Now the passes before the breaker opened tried some; the rest wait for its probe, 5 s later.
    expect(row.tried).toBeLessThanOrEqual(2 * 256);
  }, 30_000);
});
