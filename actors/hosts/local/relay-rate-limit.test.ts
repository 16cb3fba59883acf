// The local host's relay against a queue answering 429: it waits for the limit's reset, then sends everything once.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

test("a rate-limited queue: one call per pass, none before the reset, and every message published after it", async () => {
  // A QStash stand-in whose daily limit is spent until the next whole second but one: 429 with Upstash's headers.
  // Taken early in a second, so that the limit lasts nearly 2 s: from late in one it may end 1 s on, before the
  // relay's first pass on a slow machine, which then finds no limit to wait for.
  if (Date.now() % 1_000 > 500) await Bun.sleep(1_000 - (Date.now() % 1_000));
  const resetAt = Math.floor(Date.now() / 1000) + 2;
  const limitedCalls: number[] = [];
  const published = new Map<string, number>();
  const queue = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const batch = (await request.json()) as Array<{ body: string }>;
      if (Date.now() < resetAt * 1000) {
        limitedCalls.push(Date.now());
        return new Response("daily limit", {
          status: 429,
          headers: {
            "RateLimit-Limit": "1000",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": String(resetAt),
          },
        });
      }
      for (const item of batch) {
        const { id } = JSON.parse(item.body) as { id: string };
        published.set(id, (published.get(id) ?? 0) + 1);
      }
      return Response.json(batch.map((_, n) => ({ messageId: `msg_${n}` })));
    },
  });
  cleanups.push(() => queue.stop(true));
  const dir = mkdtempSync(join(tmpdir(), "edgewise-relay-limit-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const host = new LocalActorHost({
    actors: [counter],
    db: openBunSqlite(join(dir, "actors.db")),
    transport: guardedTransport(
      new QStashTransport({
        baseUrl: `http://127.0.0.1:${queue.port}`,
        token: "t",
        deliveryUrl: () => "http://127.0.0.1:1/_edgewise/deliver/counter/sink",
      }),
      new Dependencies(), // the node's broker breaker
      "broker",
    ),
    onBackgroundError: () => {},
  });
  cleanups.push(() => host.stop());
  // 20 actors' messages committed before the relay runs, so its first pass holds them all.
  const ids: string[] = [];
  for (let n = 0; n < 20; n++) {
    const outcome = await host.ask({ type: "counter", key: `l${n}` }, "SendTo", { key: "sink", count: 1 });
    ids.push(...(outcome.reply as { ids: string[] }).ids);
  }
  host.start();

  const deadline = Date.now() + 15_000;
  while (published.size < ids.length && Date.now() < deadline) await Bun.sleep(50);
  // Nothing dropped, nothing sent twice (each message once: no call the broker stored was repeated).
  expect([...published.keys()].sort()).toEqual([...ids].sort());
  expect([...published.values()].every((count) => count === 1)).toBe(true);
  // Before, the refused batch was sent again as 20 calls, one per actor, and retried on the backoff (from 250 ms):
  // 20 refused calls or more in the first pass alone. Now each pass is one call, and the next waits for the reset.
  expect(limitedCalls.length).toBe(1);
}, 30_000);
