// A queue answering 429 (its limit spent): the broker breaker stays closed, /readyz ready, and says until when.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { QStashTransport } from "../actors/queue/qstash-transport.ts";
import { guardedTransport } from "../actors/runtime/index.ts";
import { healthRoutes } from "../edge/routes/health.ts";
import { createEnvelope } from "../shared/envelope/index.ts";
import { Dependencies, isBreakerOpen } from "../shared/resilience/index.ts";
import { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import { nodeDependencyPolicies } from "./node-dependencies.ts";
import { type NodeReadinessParts, nodeReadiness } from "./node-readiness.ts";
import { queueStandIn } from "../test/support/qstash-limit.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A QStash stand-in whose daily limit is spent for an hour (every publish Upstash's daily-limit 429) until lifted. */
function limitedQueue() {
  const queue = queueStandIn({ limited: true });
  cleanups.push(() => queue.stop());
  return queue;
}

test("429s from the queue leave the broker's breaker closed, its other calls admitted, and /readyz ready", async () => {
  const queue = limitedQueue();
  const dependencies = new Dependencies({ policies: nodeDependencyPolicies });
  const transport = guardedTransport(
    new QStashTransport({
      baseUrl: queue.url,
      token: "t",
      deliveryUrl: () => "http://127.0.0.1:1/_edgewise/deliver/counter/sink",
    }),
    dependencies,
    "broker",
  );
  // More refused passes than any trip threshold (5 in a row, or half of 5 in 10 s).
  for (let n = 0; n < 8; n++) {
    const refused = await transport
      .send([createEnvelope({ type: "Ping", source: "test", target: "counter/sink", data: { n } })])
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toBeDefined();
    // The queue's refusal itself, not the breaker's fail-fast (before, from the sixth: 5 in a row opened it).
    expect(isBreakerOpen(refused)).toBe(false);
    // The relay still waits for the reset it was given (an hour here, capped by its longest backoff).
    expect(transport.retryAfterMs?.(refused)).toBeGreaterThan(3_000_000);
  }
  expect(dependencies.state("broker")).toBe("closed");
  // A call of another part of the node to the broker (the console's dead-letter list) is not refused for them.
  expect(await dependencies.call("broker", async () => "answered")).toBe("answered");

  const dir = mkdtempSync(join(tmpdir(), "edgewise-queue-limit-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const parts = {
    sql: (async () => [{ "?column?": 1 }]) as unknown as NodeReadinessParts["sql"],
    embedded: undefined,
    dataDir: dir,
    queue: { queue: { url: queue.url, token: "t" }, queueFetch: fetch },
    actors: { host: undefined, remoteHost: undefined },
    redis: { rawRedis: undefined, rateLimitRedis: undefined },
    redisKeyPrefix: "edgewise:",
    dependencies,
    transport,
  } as unknown as NodeReadinessParts;
  const app = new Hono().route("/", healthRoutes({ checks: nodeReadiness(parts) }));
  const response = await app.request("/readyz");
  const body = (await response.json()) as {
    status: string;
    dependencies: Record<string, { ok: boolean; breaker?: string; rateLimitedUntil?: string }>;
  };
  expect(response.status).toBe(200);
  expect(body.status).toBe("ready");
  // Visible all the same: until when the queue's limit is spent, as its last 429 said.
  expect(body.dependencies.broker).toMatchObject({
    ok: true,
    breaker: "closed",
    rateLimitedUntil: new Date(queue.resetAt * 1000).toISOString(),
  });

  // And in /metrics: the seconds until the reset.
  const metrics = new EdgewiseMetrics({}).observeQueueRateLimit(() => transport.rateLimitedUntil?.());
  const limitedFor = async () => {
    const families = await metrics.registry.collect();
    const family = families.find(({ name }) => name === "edgewise_queue_rate_limited_seconds");
    return (family?.points[0] as { value?: number } | undefined)?.value;
  };
  expect(await limitedFor()).toBeGreaterThan(3_000);

  // Once the queue takes a publish again, /readyz says nothing of a limit.
  queue.state.limited = false;
  await transport.send([createEnvelope({ type: "Ping", source: "test", target: "counter/sink", data: {} })]);
  const after = (await (await app.request("/readyz")).json()) as typeof body;
  expect(after.dependencies.broker?.rateLimitedUntil).toBeUndefined();
  expect(await limitedFor()).toBe(0);
});

test("a queue failing (503) still opens the broker's breaker: only the 429 is taken as an answer", async () => {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => new Response("down", { status: 503 }),
  });
  cleanups.push(() => server.stop(true));
  const dependencies = new Dependencies({ policies: nodeDependencyPolicies });
  const transport = guardedTransport(
    new QStashTransport({
      baseUrl: `http://127.0.0.1:${server.port}`,
      token: "t",
      deliveryUrl: () => "http://127.0.0.1:1/_edgewise/deliver/counter/sink",
    }),
    dependencies,
    "broker",
  );
  for (let n = 0; n < 5; n++) {
    await transport
      .send([createEnvelope({ type: "Ping", source: "test", target: "counter/sink", data: { n } })])
      .catch(() => {});
  }
  expect(dependencies.state("broker")).toBe("open");
});
