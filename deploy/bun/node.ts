// One self-hosted Edgewise node on Bun: embedded or given Postgres and broker, the local host, the app.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { deliveryPath, QStashTransport } from "../../actors/queue/qstash-transport.ts";
import {
  type ActorAddress,
  type AnyActorDefinition,
  type Subscription,
  SubscriptionRegistry,
} from "../../actors/runtime/index.ts";
import { createApp } from "../../edge/app.ts";
import type { Config } from "../../shared/config/index.ts";
import { type Broker, startBroker } from "../local/broker/index.ts";

export interface NodeOptions {
  config: Config;
  actors: AnyActorDefinition[];
  subscriptions?: Subscription[];
  /**
   * Where the broker delivers each actor's messages. Default: this node's own delivery endpoint. A split
   * deployment maps actor types to the nodes that host them.
   */
  deliveryUrl?: (target: ActorAddress, publicUrl: string) => string;
  /** Embedded broker only: shortens retry backoff (tests and development). */
  brokerTimeScale?: number;
  /** Embedded broker only: its Postgres schema, so several nodes can share one database in tests. */
  brokerSchema?: string;
  log?: (line: string) => void;
}

export interface EdgewiseNode {
  url: string;
  port: number;
  publicUrl: string;
  host: LocalActorHost;
  /** The embedded broker, when QSTASH_URL is unset. */
  broker: Broker | undefined;
  brokerUrl: string;
  /** Stops taking requests, then the host, then the embedded broker. */
  stop(): Promise<void>;
}

export async function startNode(options: NodeOptions): Promise<EdgewiseNode> {
  const { config } = options;
  const log = options.log ?? ((line: string) => console.log(`[edgewise] ${line}`));
  const dataDir = resolve(config.EDGEWISE_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });

  const broker = config.QSTASH_URL
    ? undefined
    : await startBroker({
        port: 0,
        dataDir,
        ...(config.DATABASE_URL ? { databaseUrl: config.DATABASE_URL } : {}),
        ...(options.brokerSchema ? { schema: options.brokerSchema } : {}),
        ...(options.brokerTimeScale ? { timeScale: options.brokerTimeScale } : {}),
        log: (line) => log(`broker: ${line}`),
      });
  const queue = {
    url: config.QSTASH_URL ?? (broker as Broker).url,
    token: config.QSTASH_TOKEN ?? (broker as Broker).token,
    currentSigningKey: config.QSTASH_CURRENT_SIGNING_KEY ?? (broker as Broker).currentSigningKey,
    nextSigningKey: config.QSTASH_NEXT_SIGNING_KEY ?? (broker as Broker).nextSigningKey,
  };

  // The public URL depends on the port actually bound (PORT=0 picks one), so it is read lazily.
  let publicUrl = config.PUBLIC_URL ?? "";
  const host = new LocalActorHost({
    actors: options.actors,
    db: openBunSqlite(join(dataDir, "actors.db"), config.EDGEWISE_SQLITE_SYNC),
    inboxRetentionMs: config.EDGEWISE_INBOX_RETENTION,
    idleEvictMs: config.EDGEWISE_IDLE_EVICT,
    subscriptions: new SubscriptionRegistry(options.subscriptions ?? []),
    transport: new QStashTransport({
      baseUrl: queue.url,
      token: queue.token,
      deliveryUrl: options.deliveryUrl
        ? (target) => (options.deliveryUrl as NonNullable<NodeOptions["deliveryUrl"]>)(target, publicUrl)
        : (target) => `${publicUrl}${deliveryPath(target)}`,
      retries: config.EDGEWISE_DELIVERY_RETRIES,
    }),
  });
  const app = createApp({
    actors: host,
    delivery: {
      currentSigningKey: queue.currentSigningKey,
      nextSigningKey: queue.nextSigningKey,
      publicUrl: () => publicUrl,
    },
  });
  const server = Bun.serve({ port: config.PORT, hostname: config.HOST, fetch: app.fetch });
  const port = server.port ?? config.PORT;
  publicUrl = (config.PUBLIC_URL ?? `http://127.0.0.1:${port}`).replace(/\/+$/, "");
  host.start();

  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    publicUrl,
    host,
    broker,
    brokerUrl: queue.url,
    stop() {
      stopped ??= (async () => {
        await server.stop();
        await host.stop();
        await broker?.stop();
      })();
      return stopped;
    },
  };
}
