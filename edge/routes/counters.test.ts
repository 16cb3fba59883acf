// The demo counters' Idempotency-Key: bounded as the orders' is, so what each key leaves in the inbox stays small.
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { createApp } from "../app.ts";

const file = join(mkdtempSync(join(tmpdir(), "edgewise-counters-")), "actors.db");
const host = new LocalActorHost({ actors: [counterActor], db: openBunSqlite(file) });
afterAll(() => host.stop());
const app = createApp({ actors: host, requestTimeoutMs: 30_000 });

const increment = (counter: string, key?: string) =>
  app.request(`/v1/counters/${counter}/increment`, {
    method: "POST",
    body: "{}",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { "idempotency-key": key }) },
  });

/** The handled message ids the counters' inboxes keep (for the retention window): how many, the longest, in all. */
function inboxIds(): { count: number; longest: number; total: number } {
  const db = new Database(file, { readonly: true });
  try {
    const row = db
      .query("SELECT count(*) AS count, max(length(id)) AS longest, sum(length(id)) AS total FROM inbox")
      .get() as { count: number; longest: number; total: number };
    return row;
  } finally {
    db.close();
  }
}

test("20,000 increments with distinct keys of the longest kind: each inbox id is at most 256 characters, and a retry still returns the same reply", async () => {
  const keys = 20_000;
  const key = (n: number) => `${n}-`.padEnd(255, "k");
  for (let n = 0; n < keys; n += 500) {
    await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        expect((await increment(`c${(n + i) % 50}`, key(n + i))).status).toBe(200);
      }),
    );
  }
  const ids = inboxIds();
  expect(ids.count).toBeGreaterThanOrEqual(keys);
  expect(ids.longest).toBeLessThanOrEqual(256);
  expect(ids.total).toBeLessThanOrEqual(ids.count * 256);
  // What users rely on: the same key on the same counter is the same increment, however long the key.
  const before = await (await app.request("/v1/counters/c7")).json();
  const retried = await increment("c7", key(7));
  expect(retried.status).toBe(200);
  expect(await (await app.request("/v1/counters/c7")).json()).toEqual(before);
  // And a key short enough to be its own message id keeps the id it always had (a retry across an upgrade).
  expect((await (await increment("short", "k1")).json()) as unknown).toEqual({ count: 1 });
  expect((await (await increment("short", "k1")).json()) as unknown).toEqual({ count: 1 });
}, 60_000);

test("a key the header rule refuses is 400 request.invalid, as for orders, and counts nothing", async () => {
  for (const bad of ["k".repeat(256), "k".repeat(10_000), "a b", "é"]) {
    const response = await increment("refused", bad);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code?: string; detail?: string }).detail).toContain(
      "Idempotency-Key",
    );
  }
  expect((await app.request("/v1/counters/refused")).status).toBe(200);
  expect(await (await app.request("/v1/counters/refused")).json()).toEqual({ count: 0 });
});
