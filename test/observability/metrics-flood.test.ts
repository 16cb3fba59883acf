// A flood of distinct keys, paths, methods and credentials through the app: metrics series and actors stay bounded.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { createApp } from "../../edge/app.ts";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { memoryLimiter, rateLimit } from "../../edge/middleware/rate-limit/index.ts";
import { Dependencies } from "../../shared/resilience/index.ts";
import { EdgewiseMetrics } from "../../shared/telemetry/metrics/index.ts";
import { parseMetrics } from "./metrics-scrape.ts";

const maxActiveActors = 500;
const metrics = new EdgewiseMetrics();
const host = new LocalActorHost({
  actors: [counterActor],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-flood-")), "actors.db")),
  maxActiveActors,
  onTurn: (record) => metrics.turn(record),
});
metrics.observeActors(() => host.stats().byType);
afterAll(() => host.stop());

const secret = "flood-secret-0123456789-abcdefghijkl";
const app = createApp({
  actors: host,
  dependencies: new Dependencies(),
  metrics,
  auth: { secret },
  rateLimit: rateLimit({
    limiterFor: () => memoryLimiter({ limit: 1_000_000, windowMs: 60_000 }),
    onDecision: (decision, routeClass) => metrics.rateLimit(decision, routeClass),
  }),
});

const http = "http_server_request_duration_seconds";
const methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "X-RANDOM"];

test("50,000 requests naming distinct keys, paths and methods add no series per key, and activate a bounded number of actors", async () => {
  const token = await issueToken({ sub: "reader", scopes: [], ttlSeconds: 600, secret });
  const random = () => crypto.randomUUID().slice(0, 8);
  const statuses = new Set<number>();
  const batch = 500;
  for (let i = 0; i < 50_000; i += batch) {
    await Promise.all(
      Array.from({ length: batch }, async (_, j) => {
        const n = i + j;
        const method = methods[n % methods.length] as string;
        const key = `k-${n}-${random()}`;
        const path = [
          `/v1/counters/${key}`, // a read of a distinct actor
          `/${random()}/${random()}`, // no route at all
          `/v1/counters/${key}/increment`, // a route, with a method it may not take
          `/_edgewise/${random()}`,
        ][n % 4] as string;
        const authorization = n % 3 === 0 ? `Bearer ${random()}.${random()}.${random()}` : `Bearer ${token}`;
        const response = await app.request(path, {
          method:
            method === "X-RANDOM"
              ? `X${random()
                  .toUpperCase()
                  .replace(/[^A-Z]/g, "Q")}`
              : method,
          headers: { authorization },
        });
        statuses.add(response.status);
      }),
    );
    expect(host.stats().activeActors).toBeLessThanOrEqual(maxActiveActors);
  }
  // The flood reached handlers (200), missed routes (404, 405) and was refused (401).
  for (const status of [200, 401, 404, 405]) expect(statuses).toContain(status);

  const scrape = await parseMetrics(await (await app.request("/metrics")).text());
  const series = scrape.histograms(http);
  // Labels are route patterns, the nine methods RFC 9110 names (any other is `_OTHER`) and the status codes the
  // gateway answers: a few dozen series, not one per key, path or method, and none squeezed into `_overflow`.
  expect(series.length).toBeGreaterThan(5);
  expect(series.length).toBeLessThan(100);
  const values = new Set(series.flatMap((point) => Object.values(point.labels)));
  expect(values).not.toContain("_overflow");
  for (const value of values) expect(value).not.toMatch(/k-\d+|[0-9a-f]{8}|^X[A-Z]/);
  expect(scrape.text).not.toContain("k-1-");
  // Reads of 12,500 distinct counters: at most `maxActiveActors` of them held in memory.
  expect(scrape.value("edgewise_actors_active", { actor_type: "counter" })).toBeLessThanOrEqual(
    maxActiveActors,
  );
}, 120_000);
