// The queue on Workers, from the Worker's environment: the QStash transport for the relay, the delivery endpoint's keys.
import { deliveryPath, QStashTransport } from "../../queue/qstash-transport.ts";
import { brokerDependencyPolicy } from "../../queue/qstash-rate-limit.ts";
import { guardedTransport } from "../../runtime/guarded.ts";
import type { Transport } from "../../runtime/transport.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { settingFromEnv } from "./env-settings.ts";
import { workerLogger } from "./worker-log.ts";
import { Dependencies, logStateChange } from "../../../shared/resilience/index.ts";
import {
  limitReportingTransport,
  QueueLimit,
  type QueueLimitNamespace,
  queueLimitPort,
} from "./queue-limit.ts";

/**
 * The variables the queue reads. Non-secret ones may be `[vars]` in wrangler.toml; the token and signing keys
 * are secrets (`wrangler secret put` in production, `.dev.vars` or `--var NAME:value` under `wrangler dev`).
 */
export interface QueueEnv {
  /** The QStash API: `https://qstash.upstash.io` in production, the local broker in development and tests. */
  QSTASH_URL?: string;
  QSTASH_TOKEN?: string;
  QSTASH_CURRENT_SIGNING_KEY?: string;
  QSTASH_NEXT_SIGNING_KEY?: string;
  /** The Worker's public base URL; the broker delivers to `${PUBLIC_URL}/_edgewise/deliver/<type>/<key>`. */
  PUBLIC_URL?: string;
  /** Retries the broker makes per delivery before dead-lettering it: 0 to 20, default 3, as on a node. */
  EDGEWISE_DELIVERY_RETRIES?: string;
}

/** What `createApp({ delivery })` needs for the signed delivery endpoint. */
export interface DeliveryEnvOptions {
  currentSigningKey: string;
  nextSigningKey: string;
  publicUrl: string;
}

const set = (value: string | undefined): value is string => value !== undefined && value !== "";

/**
 * The relay's transport: QStash at QSTASH_URL, delivering to PUBLIC_URL. Undefined when QSTASH_URL is unset,
 * so committed messages wait durably in the outbox. Only builds objects (no I/O), so a Durable Object can call
 * it in its constructor. Throws `config.invalid` when QSTASH_URL comes without QSTASH_TOKEN or PUBLIC_URL.
 */
export function qstashTransportFromEnv(
  env: QueueEnv,
  options: { retries?: number; onRateLimit?: (until: number | undefined) => void } = {},
): QStashTransport | undefined {
  if (!set(env.QSTASH_URL)) return undefined;
  const missing = (["QSTASH_TOKEN", "PUBLIC_URL"] as const).filter((name) => !set(env[name]));
  if (missing.length > 0) {
    throw new EdgewiseError("config.invalid", `QSTASH_URL is set but ${missing.join(" and ")} is not`);
  }
  const base = (env.PUBLIC_URL as string).replace(/\/+$/, "");
  return new QStashTransport({
    baseUrl: env.QSTASH_URL,
    token: env.QSTASH_TOKEN as string,
    deliveryUrl: (target) => `${base}${deliveryPath(target)}`,
    retries: options.retries ?? settingFromEnv(env, "EDGEWISE_DELIVERY_RETRIES"),
    ...(options.onRateLimit ? { onRateLimit: options.onRateLimit } : {}),
  });
}

/** The relays' breaker for the broker: one per isolate, shared by every Durable Object that runs in it. */
let relayDependencies: Dependencies | undefined;
/** The queue's last answer to any relay of the isolate's Durable Objects, reported to the `broker` coordinator. */
let relayLimit: QueueLimit | undefined;

/** The coordinator binding, where the objects' relays report a 429 for the gateway's /readyz (wrangler.toml). */
export interface QueueLimitEnv {
  BREAKERS?: QueueLimitNamespace;
}

/** A `QueueLimit` reporting to the `broker` coordinator when the env binds one; this isolate's own otherwise. */
export function queueLimitFromEnv(env: QueueLimitEnv): QueueLimit {
  const logger = workerLogger(env);
  return new QueueLimit({
    port: env.BREAKERS ? queueLimitPort(env.BREAKERS) : undefined,
    log: (line, fields) => logger.warn(line, fields),
  });
}

/**
 * The relay's transport for Durable Objects: `qstashTransportFromEnv` behind the isolate's `broker` breaker, with
 * the node's 5 s timeout. While it is open a send fails at once, and each object's relay retries when the breaker
 * next lets a probe through (`availableInMs`), so outboxes drain within seconds of the broker's return instead of
 * after a backoff of up to a minute. The breaker is the isolate's own: an object's alarm has no request in whose
 * `waitUntil` to sync a BreakerCoordinator, as the Worker's fetch path does.
 */
export function relayTransportFromEnv(env: QueueEnv & QueueLimitEnv): Transport | undefined {
  relayLimit ??= queueLimitFromEnv(env);
  const limit = relayLimit;
  const transport = qstashTransportFromEnv(env, { onRateLimit: (until) => limit.observe(until) });
  if (!transport) return undefined;
  // The node's broker policy: a 5 s timeout, and a 429 (the queue's limit spent) not counted as a failure.
  relayDependencies ??= new Dependencies({
    policies: { broker: brokerDependencyPolicy },
    // As a node logs its breakers (deploy/node-dependencies.ts): closing at info, opening at warn.
    onStateChange: logStateChange(workerLogger(env), "relay breaker"),
  });
  // A 429 (with its reset) and the publish taken after it go to the coordinator, where the gateway's /readyz reads
  // them; its `rateLimitedUntil` is the isolate's, which the objects' OTLP metrics push.
  return limitReportingTransport(guardedTransport(transport, relayDependencies, "broker"), limit);
}

/**
 * The delivery endpoint's settings: both signing keys and PUBLIC_URL (the signature covers the full URL).
 * Undefined when no signing key is set (no endpoint: PUBLIC_URL alone may well be a `[vars]` entry whose
 * secrets are not put yet); `config.invalid` when a key comes without the other or without PUBLIC_URL.
 */
export function deliveryFromEnv(env: QueueEnv): DeliveryEnvOptions | undefined {
  if (!set(env.QSTASH_CURRENT_SIGNING_KEY) && !set(env.QSTASH_NEXT_SIGNING_KEY)) return undefined;
  const names = ["QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY", "PUBLIC_URL"] as const;
  const missing = names.filter((name) => !set(env[name]));
  if (missing.length > 0) {
    throw new EdgewiseError(
      "config.invalid",
      `the delivery endpoint needs QSTASH_CURRENT_SIGNING_KEY, QSTASH_NEXT_SIGNING_KEY and PUBLIC_URL; missing ${missing.join(", ")}`,
    );
  }
  return {
    currentSigningKey: env.QSTASH_CURRENT_SIGNING_KEY as string,
    nextSigningKey: env.QSTASH_NEXT_SIGNING_KEY as string,
    publicUrl: env.PUBLIC_URL as string,
  };
}
