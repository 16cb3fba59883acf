// What /readyz checks on a node: Postgres, the broker, a gateway's actor host, the data dir, and Redis.
import type { Transport } from "../actors/runtime/transport.ts";
import type { DependencyCheck } from "../edge/routes/health.ts";
import { type Dependencies, redisCheckReason } from "../shared/resilience/index.ts";
import { dataDirCheck } from "./data-dir-check.ts";
import type { Sql } from "./local/broker/db.ts";
import type { EmbeddedPostgres } from "./local/pglite/index.ts";
import type { NodeActors } from "./node-actors.ts";
import type { NodeQueue } from "./node-queue.ts";
import type { NodeRateLimit } from "./node-rate-limit.ts";

export interface NodeReadinessParts {
  sql: Sql;
  embedded: EmbeddedPostgres | undefined;
  dataDir: string;
  queue: NodeQueue;
  actors: NodeActors;
  redis: NodeRateLimit;
  /** REDIS_KEY_PREFIX: the probe reads a key of it, which a Redis user limited to the prefix's keys may read. */
  redisKeyPrefix: string;
  dependencies: Dependencies;
  /** The relays' transport to the broker: /readyz shows until when the queue's limit is spent, if it said so. */
  transport: Transport;
}

/** The node's own checks; an extension adds its own after them. */
export function nodeReadiness(parts: NodeReadinessParts): DependencyCheck[] {
  const { sql, embedded, dataDir, dependencies } = parts;
  const { queue, queueFetch } = parts.queue;
  const { host, remoteHost } = parts.actors;
  const { rawRedis, rateLimitRedis } = parts.redis;
  const readiness: DependencyCheck[] = [
    {
      name: "postgres",
      critical: true,
      check: async () => void (await sql`SELECT 1`),
      breaker: () => dependencies.state("postgres"),
    },
    {
      name: "broker",
      critical: true,
      breaker: () => dependencies.state("broker"),
      // A 429 to a publish is the queue pacing us, not down (brokerIsFailure): shown, and still ready.
      rateLimitedUntil: () => parts.transport.rateLimitedUntil?.(),
      check: async (signal) => {
        const response = await queueFetch(`${queue.url}/v2/keys`, {
          headers: { authorization: `Bearer ${queue.token}` },
          signal,
        });
        await response.body?.cancel();
        if (response.status >= 500) throw new Error(`broker answered ${response.status}`);
      },
    },
  ];
  // A gateway of a split deployment serves nothing without its actor host: the hop, its TLS and the secret.
  if (remoteHost) {
    readiness.push({
      name: "actorHost",
      critical: true,
      check: (signal) => remoteHost.ping(signal),
      breaker: () => dependencies.state("actor-host"),
    });
  }
  // Critical where the node's own state lives there: the local actors' SQLite, or the embedded Postgres.
  readiness.push(dataDirCheck(dataDir, host !== undefined || embedded !== undefined));
  if (rateLimitRedis) {
    readiness.push({
      name: "redis",
      critical: false,
      // The raw client: a readiness probe must see Redis itself, not its breaker's fast failure.
      check: async () => void (await rawRedis?.get(`${parts.redisKeyPrefix}ping`)),
      // Redis answering with an error (NOPERM from an ACL, LOADING) is named by its code, and Redis refusing the REST
      // bridge's AUTH "refused", as over TCP: not "unreachable".
      reasonFrom: redisCheckReason,
      breaker: () => dependencies.state("redis"),
    });
  }
  return readiness;
}
