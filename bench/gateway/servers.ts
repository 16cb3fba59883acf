// The servers bench/gateway compares, one per process: bare Hono, and the full gateway chain on the local host.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { createApp } from "../../edge/app.ts";
import { clientIp } from "../../edge/middleware/client-ip/index.ts";
import { configuredLimiter } from "../../edge/middleware/rate-limit/configured.ts";
import { rateLimit } from "../../edge/middleware/rate-limit/index.ts";
import { tcpRedis } from "../../edge/middleware/rate-limit/redis-tcp-bun.ts";
import { installTracing, startNodeTracing } from "../../deploy/tracing.ts";

/** `bare`, `memory` (full chain, in-memory limiter) or `redis` (full chain, limiter on the real Redis). */
const variant = process.argv[2] ?? "bare";
const secret = process.env.BENCH_JWT_SECRET ?? "";

function bare() {
  const app = new Hono();
  app.get("/v1/counters/:key", (c) => c.json({ count: 0 }));
  return app;
}

function gateway(redisUrl: string | undefined) {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-bench-gw-"));
  process.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));
  // BENCH_TRACING=1: the trace SDK and the embedded trace store, as a node runs them (tracing on vs off), with the
  // node's sampler: EDGEWISE_TRACE_SAMPLE_READS as set, else its default (bench/gateway/tracing.ts sets it for `full`).
  // BENCH_TRACING=sdk: the SDK only, spans made but not stored (to tell the store's cost from the SDK's).
  if (process.env.BENCH_TRACING === "1") startNodeTracing({ dataDir, openDb: openBunSqlite });
  else if (process.env.BENCH_TRACING === "sdk") installTracing();

  const host = new LocalActorHost({
    actors: [counterActor],
    db: openBunSqlite(join(dataDir, "actors.db")),
  }).start();
  const redis = redisUrl ? tcpRedis({ url: redisUrl }) : undefined;
  const limiter = configuredLimiter({
    rate: { limit: 1_000_000_000, windowMs: 60_000 },
    onRedisFailure: "closed",
    ...(redis ? { redis, prefix: `edgewise:bench:${process.pid}` } : {}),
  });
  return createApp({
    actors: host,
    clientIp: clientIp({ trustedProxies: [], platform: "bun" }),
    auth: { secret },
    rateLimit: rateLimit({ limiterFor: () => limiter }),
  });
}

const app = variant === "bare" ? bare() : gateway(variant === "redis" ? "redis://127.0.0.1:6379" : undefined);
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch: (request, self) => app.fetch(request, { remoteAddress: self.requestIP(request)?.address }),
});
console.log(`listening ${server.port}`);
process.on("SIGTERM", () => process.exit(0));
