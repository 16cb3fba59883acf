// Broker configuration: the options of startBroker, their defaults, and the public `qstash dev` credentials.

import { maskSecrets } from "../../../shared/telemetry/log/redact.ts";
import type { Serve } from "../../serve.ts";
import type { TlsFiles, TlsMaterial } from "../../tls.ts";
import type { PGliteSync } from "../pglite/durable.ts";
import type { SchemaMarkers } from "../../../shared/postgres/schema-marker.ts";
import type { Sql } from "./db.ts";

/**
 * The credentials `qstash dev` prints, and that @upstash/qstash 2.12's dev mode (`QSTASH_DEV=true`) hard-codes
 * (`DEV_CREDENTIALS` in the SDK). They are public: never use them for anything reachable from outside.
 * Older qstash-cli builds printed other signing keys (sig_7RvLj…, sig_7W3ZN…); the SDK's dev mode checks
 * `GET /v2/keys` against the ones below, so these are the ones that let a user swap brokers.
 */
export const DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=";
export const DEV_CURRENT_SIGNING_KEY = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r";
export const DEV_NEXT_SIGNING_KEY = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs";
export const DEV_PORT = 8080;

/** True for `qstash dev`'s public signing keys, which anyone can sign a delivery with. */
export const isDevSigningKey = (key: string): boolean =>
  key === DEV_CURRENT_SIGNING_KEY || key === DEV_NEXT_SIGNING_KEY;

/**
 * Deliveries kept in flight when none is configured: 256 on Postgres, where more in flight makes claims, outcome
 * writes and the receivers' group commits larger; 64 on the embedded PGlite, whose one connection only queues more
 * work behind it (bench/README.md: the queue and saga runs of 2026-12-04).
 */
export function defaultDeliveryConcurrency(onEmbeddedPglite: boolean): number {
  return onEmbeddedPglite ? 64 : 256;
}

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * Upkeep for a database that nothing else vacuums: the embedded PGlite is single-user Postgres, with no
 * autovacuum or autoanalyze. Without it the queue table fills with dead rows and cached plans chosen while the
 * tables were empty (sequential scans) are kept as they grow. On Postgres, leave it to autovacuum.
 */
export interface MaintenanceOptions {
  /** Vacuum and analyze the broker's hot tables as needed this often, if anything was written. Default 10 s. */
  vacuumEveryMs?: number;
  /** ...and sooner once this many messages have been delivered or failed since the last one. Default 5,000. */
  vacuumEveryOutcomes?: number;
}

export interface BrokerOptions {
  /** TCP port; 0 picks a free one. Default 8080, like `qstash dev`. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1. */
  hostname?: string;
  /**
   * A postgres.js pool to share (the node shares one with other stores; PGlite allows one connection).
   * The broker then leaves it open when it stops. Its int8 columns must parse as numbers: use `connect`.
   */
  sql?: Sql;
  /**
   * The schema markers of `sql`, read by its owner at its start (with `brokerSchema` among the components asked
   * about): the broker's migration then reads none of its own. Only with `sql`.
   */
  schemaMarkers?: SchemaMarkers;
  /** A postgres.js URL. Without it (and without `sql`), an embedded PGlite is started in `dataDir`. */
  databaseUrl?: string;
  /** Postgres schema for the `qstash_*` tables (created if missing). Default: the connection's search_path. */
  schema?: string;
  /** Where the embedded PGlite keeps its files (`<dataDir>/pglite`). Default ./.edgewise */
  dataDir?: string;
  /** The embedded PGlite's durability: `FULL` (the default) fsyncs every commit, `NORMAL` does not. */
  pgliteSync?: PGliteSync;
  token?: string;
  /**
   * During a rotation of the token: the one being replaced, still accepted (QSTASH_PREVIOUS_TOKEN) until the
   * broker restarts without it, so publishers can move to the new token one by one.
   */
  previousToken?: string | undefined;
  currentSigningKey?: string;
  nextSigningKey?: string;
  /** Multiplies retry backoff, Retry-After, Upstash-Delay and Upstash-Not-Before distances. Default 1. */
  timeScale?: number;
  /** Largest message body accepted, in bytes. Default 1 MiB (QStash free plan). */
  maxBodyBytes?: number;
  /** Largest /v2/batch request, in bytes. Default 10 MiB. */
  maxBatchBytes?: number;
  /**
   * Deliveries in flight at once. Default `defaultDeliveryConcurrency`: 256 with `sql` or `databaseUrl`, 64 on the
   * broker's own embedded PGlite (a node sharing its PGlite through `sql` passes 64 itself).
   */
  deliveryConcurrency?: number;
  /** Delivery timeout when a message has no Upstash-Timeout. Default 15 minutes. */
  defaultTimeoutMs?: number;
  /** Retries when a message has no Upstash-Retries. Default 3. */
  defaultRetries?: number;
  /** Highest Upstash-Retries accepted. Default 20. */
  maxRetries?: number;
  /**
   * Longest Upstash-Delay, and farthest Upstash-Not-Before, accepted (400 beyond). Default 1 year, QStash's
   * pay-as-you-go limit (its free plan allows 7 days).
   */
  maxDelayMs?: number;
  /** How long a deduplication id is remembered. Default 10 minutes. */
  dedupWindowMs?: number;
  /** How long events (logs) are kept. Default 7 days. */
  eventRetentionMs?: number;
  /**
   * How long a dead letter is kept (QStash's DLQ retention, which its plans set): older ones are deleted by the
   * housekeeping sweep. Default 30 days.
   */
  dlqRetentionMs?: number;
  /** Fallback poll when nothing woke the dispatcher. Default 1000 ms. */
  pollIntervalMs?: number;
  /** How deliveries are sent. Default: the global fetch (keep-alive). */
  fetch?: FetchLike;
  /**
   * Messages are handed out only once this settles. For a node that embeds the broker: once it serves at its final
   * address, to which the messages waiting for it were moved (deploy/delivery-origin.ts). Default: at once.
   */
  deliverAfter?: Promise<unknown>;
  /** How the broker listens for HTTP. Default: Bun.serve (Deno passes deploy/deno/serve.ts). */
  serve?: Serve;
  /**
   * Serve the API over HTTPS with this certificate, followed as its files are rotated (a new listener on the same
   * port, deploy/bun/serve.ts); `url` is then https. No client certificate is asked for: the token authenticates
   * publishers. `onApplied` is told once a rotated certificate serves every new connection.
   */
  tls?: { files: TlsFiles; onApplied?: (material: TlsMaterial) => void };
  /** Where operational warnings go. Default console.error. */
  log?: (message: string) => void;
  /**
   * Periodic VACUUM (ANALYZE) of the broker's tables. Default: on when the broker starts its own embedded
   * PGlite, off otherwise; a node that shares its embedded PGlite with the broker (`sql`) passes it.
   */
  maintenance?: MaintenanceOptions | false;
}

export interface ResolvedOptions {
  port: number;
  hostname: string;
  databaseUrl: string | undefined;
  schema: string | undefined;
  dataDir: string;
  token: string;
  previousToken: string | undefined;
  currentSigningKey: string;
  nextSigningKey: string;
  timeScale: number;
  maxBodyBytes: number;
  maxBatchBytes: number;
  deliveryConcurrency: number;
  defaultTimeoutMs: number;
  defaultRetries: number;
  maxRetries: number;
  maxDelayMs: number;
  dedupWindowMs: number;
  eventRetentionMs: number;
  dlqRetentionMs: number;
  pollIntervalMs: number;
  fetch: FetchLike;
  log: (message: string) => void;
  /** Undefined: no maintenance. */
  maintenance: Required<MaintenanceOptions> | undefined;
}

const positive = (name: string, value: number): number => {
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`broker option ${name} must be a positive number`);
  return value;
};

export function resolveOptions(options: BrokerOptions = {}): ResolvedOptions {
  const port = options.port ?? DEV_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error("broker option port must be 0-65535");
  if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) {
    throw new Error("broker option schema must be a lower-case SQL identifier");
  }
  // PGlite ignores the search_path a client asks for at connect time: the tables would land in public, silently.
  if (options.schema !== undefined && !options.databaseUrl && !options.sql) {
    throw new Error("broker option schema needs databaseUrl: the embedded PGlite keeps its tables in public");
  }
  return {
    port,
    hostname: options.hostname ?? "127.0.0.1",
    databaseUrl: options.databaseUrl,
    schema: options.schema,
    dataDir: options.dataDir ?? "./.edgewise",
    token: options.token ?? DEV_TOKEN,
    previousToken: options.previousToken,
    currentSigningKey: options.currentSigningKey ?? DEV_CURRENT_SIGNING_KEY,
    nextSigningKey: options.nextSigningKey ?? DEV_NEXT_SIGNING_KEY,
    timeScale: positive("timeScale", options.timeScale ?? 1),
    maxBodyBytes: positive("maxBodyBytes", options.maxBodyBytes ?? 1024 * 1024),
    maxBatchBytes: positive("maxBatchBytes", options.maxBatchBytes ?? 10 * 1024 * 1024),
    deliveryConcurrency: Math.floor(
      positive(
        "deliveryConcurrency",
        options.deliveryConcurrency ?? defaultDeliveryConcurrency(!options.sql && !options.databaseUrl),
      ),
    ),
    defaultTimeoutMs: positive("defaultTimeoutMs", options.defaultTimeoutMs ?? 15 * 60_000),
    defaultRetries: Math.max(0, Math.floor(options.defaultRetries ?? 3)),
    maxRetries: Math.max(0, Math.floor(options.maxRetries ?? 20)),
    maxDelayMs: positive("maxDelayMs", options.maxDelayMs ?? 365 * 86_400_000),
    dedupWindowMs: positive("dedupWindowMs", options.dedupWindowMs ?? 10 * 60_000),
    eventRetentionMs: positive("eventRetentionMs", options.eventRetentionMs ?? 7 * 86_400_000),
    dlqRetentionMs: positive("dlqRetentionMs", options.dlqRetentionMs ?? 30 * 86_400_000),
    pollIntervalMs: positive("pollIntervalMs", options.pollIntervalMs ?? 1000),
    fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    log: maskedLog(options.log ?? ((message) => console.error(`[qstash-broker] ${message}`))),
    maintenance: resolveMaintenance(options),
  };
}

/**
 * Every line the broker logs, masked as a node's log is: a failed request is logged with its path, and a publish's
 * path is the destination URL, which may carry the receiver's password or a token.
 */
const maskedLog =
  (log: (message: string) => void) =>
  (message: string): void =>
    log(maskSecrets(message));

function resolveMaintenance(options: BrokerOptions): Required<MaintenanceOptions> | undefined {
  const embedded = !options.sql && !options.databaseUrl;
  const given = options.maintenance ?? (embedded ? {} : false);
  if (given === false) return undefined;
  return {
    vacuumEveryMs: positive("maintenance.vacuumEveryMs", given.vacuumEveryMs ?? 10_000),
    vacuumEveryOutcomes: positive("maintenance.vacuumEveryOutcomes", given.vacuumEveryOutcomes ?? 5_000),
  };
}
