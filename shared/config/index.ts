// Configuration: parsed from the environment with valibot, with messages that name the variable and the fix.
import * as v from "valibot";
import { EdgewiseError } from "../errors/index.ts";
import { isLoopbackHost } from "../net/ip.ts";
import { rotationIssue } from "./rotation.ts";
import { isWeakSecret, weakSecretMessage } from "./secret-strength.ts";

/** Durations are written `500ms`, `10s`, `5m`, `2h` or `7d`. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    match[2] as "ms" | "s" | "m" | "h" | "d"
  ];
  return Math.round(Number(match[1]) * unit);
}

/**
 * A URL trust is fetched from (a JWKS): https, or http to a loopback name or address, where nothing on the way can
 * change the answer.
 */
function fetchedSafely(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return true; // v.url has said so already
  }
  if (url.protocol === "https:") return true;
  if (url.protocol !== "http:") return false;
  return isLoopbackHost(url.hostname);
}

/**
 * A connection string that parses as a URL. postgres.js also takes several hosts (`@h1:5432,h2:5432/db`), which
 * `new URL` does not, so the extra hosts are dropped before the check. The message never quotes the value: it holds
 * the password.
 */
const connectionUrl = (name: string, scheme: RegExp, what: string) =>
  v.pipe(
    v.string(),
    v.regex(scheme, `${name} must be a ${what} URL`),
    v.check(
      (text) => parses(text) || parses(text.replace(/,[^/?#@,]+(?=[,/?#]|$)/g, "")),
      `${name} is not a valid URL: check its host and port, and percent-encode (encodeURIComponent) a password or user name with /, #, ?, @, : or % in it`,
    ),
  );

/** Also the user name and password decode: a bare `%` parses, then fails in the client (postgres.js: "URI error"). */
function parses(text: string): boolean {
  try {
    const url = new URL(text);
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    return true;
  } catch {
    return false;
  }
}

const duration = (name: string) =>
  v.pipe(
    v.string(),
    v.check(
      (text) => parseDuration(text) !== undefined,
      `${name} must be a duration such as 500ms, 10s, 5m, 2h or 7d`,
    ),
    v.transform((text) => parseDuration(text) as number),
  );

/** A whole number from `min` to `max`, given as text. */
const wholeNumber = (name: string, min: number, max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d+$/, `${name} must be a whole number`),
    v.transform(Number),
    v.minValue(min, `${name} must be at least ${min}`),
    v.maxValue(max, `${name} must be at most ${max}`),
  );

const port = (name: string) =>
  v.pipe(
    v.string(),
    v.regex(/^\d+$/, `${name} must be a whole number`),
    v.transform(Number),
    v.integer(),
    v.minValue(0, `${name} must be between 0 and 65535`),
    v.maxValue(65535, `${name} must be between 0 and 65535`),
  );

/** A rate written `<count>/<window>`, e.g. `100/10s`. */
export function parseRate(text: string): { limit: number; windowMs: number } | undefined {
  const [count, window] = text.split("/");
  const windowMs = window === undefined ? undefined : parseDuration(window);
  if (!count || !/^\d+$/.test(count) || Number(count) < 1 || !windowMs) return undefined;
  return { limit: Number(count), windowMs };
}

const rate = (name: string) =>
  v.pipe(
    v.string(),
    v.check(
      (text) => parseRate(text) !== undefined,
      `${name} must be written <count>/<window>, such as 100/10s`,
    ),
    v.transform((text) => parseRate(text) as { limit: number; windowMs: number }),
  );

const bytes = (name: string) =>
  v.pipe(
    v.string(),
    v.regex(/^\d+(kb|mb)?$/i, `${name} must be a size such as 65536, 64kb or 1mb`),
    v.transform((text) => {
      const n = Number.parseInt(text, 10);
      const unit = text.toLowerCase().endsWith("mb")
        ? 1_048_576
        : text.toLowerCase().endsWith("kb")
          ? 1024
          : 1;
      return n * unit;
    }),
  );

const list = v.pipe(
  v.string(),
  v.transform((text) =>
    text
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  ),
);

/** A duration of at least `minMs`: shorter would quietly defeat the setting (see each use). */
const durationAtLeast = (name: string, minMs: number, minText: string, why: string) =>
  v.pipe(duration(name), v.minValue(minMs, `${name} must be at least ${minText}: ${why}`));

/** `*`, or origins as a browser sends them (`https://app.example.com`, lowercase, no path): others never match. */
const origins = v.pipe(
  list,
  v.check(
    (items) => items.every((item) => item === "*" || isOrigin(item)),
    "CORS_ORIGINS must list origins such as https://app.example.com (scheme, lowercase host, optional port, no path), or *",
  ),
);

function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "https:" || url.protocol === "http:") && url.origin === text;
  } catch {
    return false;
  }
}

/** A key HMACs are made with: at least 32 characters, and not obviously weak (secret-strength.ts). */
const hmacSecret = (name: string) =>
  v.pipe(
    v.string(),
    v.minLength(32, `${name} must be at least 32 characters`),
    // A short one is refused by its length alone: one reason per variable.
    v.check((text) => text.length < 32 || !isWeakSecret(text), weakSecretMessage(name)),
  );

/**
 * A QStash signing key: one signature, on any delivery, lets a weak key be found offline, and with it deliveries be
 * forged. No length rule of its own (the weak-secret floor asks about 64 bits, which no short key has).
 */
const signingKey = (name: string) =>
  v.pipe(
    v.string(),
    v.check((text) => !isWeakSecret(text), weakSecretMessage(name)),
  );

export const ConfigSchema = v.object({
  PORT: v.optional(port("PORT"), "8787"),
  /** The interface the gateway listens on. */
  HOST: v.optional(v.pipe(v.string(), v.minLength(1, "HOST must not be empty")), "0.0.0.0"),
  EDGEWISE_DATA_DIR: v.optional(
    v.pipe(v.string(), v.minLength(1, "EDGEWISE_DATA_DIR must not be empty")),
    "./.edgewise",
  ),
  /** How long a handled message id is remembered for deduplication. */
  EDGEWISE_INBOX_RETENTION: v.optional(
    durationAtLeast(
      "EDGEWISE_INBOX_RETENTION",
      1000,
      "1s",
      "shorter forgets handled ids at once, so redeliveries apply again",
    ),
    "7d",
  ),
  /**
   * How long the embedded broker keeps its event log (`GET /v2/events`, the console's queues): one row per delivery,
   * about 16 an order, so 7 days at 15 orders/s is some 145 million rows. Older events are deleted every minute.
   */
  EDGEWISE_BROKER_EVENT_RETENTION: v.optional(duration("EDGEWISE_BROKER_EVENT_RETENTION"), "7d"),
  /**
   * How long the embedded broker keeps a dead letter (`GET /v2/dlq`, the console's dead letters) that nobody replayed
   * or deleted, as QStash's plans do. Older ones are deleted every minute and at start, and the broker logs how many.
   */
  EDGEWISE_BROKER_DLQ_RETENTION: v.optional(
    durationAtLeast(
      "EDGEWISE_BROKER_DLQ_RETENTION",
      86_400_000,
      "1d",
      "a dead letter waits for an operator to replay or delete it",
    ),
    "30d",
  ),
  /**
   * How long the activity log keeps an entry; unset, for good. About 6 entries an order, some 370 MB an hour at 15
   * orders/s on PGlite. Set, the node deletes older entries at start and every hour (deploy/activity-retention.ts).
   */
  EDGEWISE_ACTIVITY_RETENTION: v.optional(duration("EDGEWISE_ACTIVITY_RETENTION")),
  /**
   * How long the outbound webhooks' attempt log (`GET /v1/webhooks/subscriptions/{id}/attempts`) keeps an attempt:
   * one row per attempt per subscription, for every order that ends. The node deletes older ones at start and every
   * hour (deploy/retention.ts). At least 21 days: a delivery's retries span up to 20 days (EDGEWISE_DELIVERY_RETRIES
   * at most 20, each wait at most a day), and a retry finds an earlier 2xx in this log, so a shorter one could post
   * an event that was delivered again.
   */
  EDGEWISE_WEBHOOK_ATTEMPT_RETENTION: v.optional(
    durationAtLeast(
      "EDGEWISE_WEBHOOK_ATTEMPT_RETENTION",
      21 * 86_400_000,
      "21d",
      "a delivery's retries span up to 20 days, and a retry checks this log for an earlier 2xx",
    ),
    "30d",
  ),
  /**
   * On SIGTERM, /readyz answers 503 `draining` for this long while the node still serves, so a load balancer stops
   * sending before the listener closes (a connection refused). Set it to the balancer's probe period or more.
   */
  EDGEWISE_SHUTDOWN_DELAY: v.optional(duration("EDGEWISE_SHUTDOWN_DELAY"), "0s"),
  /**
   * On SIGTERM, after EDGEWISE_SHUTDOWN_DELAY, how long the requests under way get to finish before their connections
   * are closed. Keep the delay, this and about 8 s for the rest of the stop under its 28 s bound.
   */
  EDGEWISE_SHUTDOWN_DRAIN: v.optional(duration("EDGEWISE_SHUTDOWN_DRAIN"), "10s"),
  /** An actor with no message for this long is evicted from memory (its state stays on disk). */
  EDGEWISE_IDLE_EVICT: v.optional(duration("EDGEWISE_IDLE_EVICT"), "60s"),
  /** Actors held in memory at most; one more evicts the least recently asked idle one (its state stays on disk). */
  EDGEWISE_MAX_ACTORS: v.optional(wholeNumber("EDGEWISE_MAX_ACTORS", 1, 10_000_000), "10000"),
  /**
   * Admission control: while the queues are this far behind (the oldest message due and not yet delivered), new
   * orders are refused with 503 `overloaded` and Retry-After, before anything is written. 0 turns it off.
   */
  EDGEWISE_MAX_QUEUE_DELAY: v.optional(duration("EDGEWISE_MAX_QUEUE_DELAY"), "2s"),
  /** How long one actor turn may take before it fails (`actor.turn_timeout`) and frees the actor's mailbox. */
  EDGEWISE_TURN_TIMEOUT: v.optional(
    v.pipe(
      duration("EDGEWISE_TURN_TIMEOUT"),
      v.minValue(1, "EDGEWISE_TURN_TIMEOUT must be above 0, such as 30s"),
    ),
    "30s",
  ),
  /** SQLite durability: FULL fsyncs every group commit; NORMAL survives a process crash but not power loss. */
  EDGEWISE_SQLITE_SYNC: v.optional(
    v.picklist(["FULL", "NORMAL"], "EDGEWISE_SQLITE_SYNC must be FULL or NORMAL"),
    "FULL",
  ),
  /** The embedded PGlite's durability, in the same terms: FULL fsyncs every commit; NORMAL does not. */
  EDGEWISE_PGLITE_SYNC: v.optional(
    v.picklist(["FULL", "NORMAL"], "EDGEWISE_PGLITE_SYNC must be FULL or NORMAL"),
    "FULL",
  ),
  /** Postgres for the broker (and later billing); unset = embedded PGlite in the data dir. */
  DATABASE_URL: v.optional(connectionUrl("DATABASE_URL", /^postgres(ql)?:\/\//, "postgres://")),
  /** A QStash-protocol broker; unset = the embedded local broker. */
  QSTASH_URL: v.optional(v.pipe(v.string(), v.url("QSTASH_URL must be a URL"))),
  QSTASH_TOKEN: v.optional(v.string()),
  /**
   * The keys deliveries' signatures are checked with. Upstash's are `sig_` and 28 random characters, and set their
   * length; a key of one's own (`npm run broker`) that is obviously weak is refused, as an HMAC secret is.
   */
  QSTASH_CURRENT_SIGNING_KEY: v.optional(signingKey("QSTASH_CURRENT_SIGNING_KEY")),
  QSTASH_NEXT_SIGNING_KEY: v.optional(signingKey("QSTASH_NEXT_SIGNING_KEY")),
  /**
   * The CAs trusted for an https QSTASH_URL (a PEM bundle, reloaded when it changes): a self-hosted broker whose
   * certificate a private CA issued (`npm run certs`: broker-ca-bundle.pem). Unset: the runtime's public roots.
   */
  QSTASH_CA_FILE: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** Retries the broker makes per delivery before dead-lettering it (QStash's default is 3). */
  EDGEWISE_DELIVERY_RETRIES: v.optional(wholeNumber("EDGEWISE_DELIVERY_RETRIES", 0, 20), "3"),
  /**
   * Deliveries the embedded broker keeps in flight at once (ignored with QSTASH_URL). Unset: 256 on Postgres
   * (DATABASE_URL), where more in flight means larger claims, outcome writes and group commits; 64 on the embedded
   * PGlite, whose one connection more would only queue behind (`defaultDeliveryConcurrency` in deploy/local/broker).
   * Each delivery holds its message's body (at most 1 MiB) until answered.
   */
  QSTASH_DELIVERY_CONCURRENCY: v.optional(wholeNumber("QSTASH_DELIVERY_CONCURRENCY", 1, 4096)),
  /** The base URL the broker delivers to; default `http://127.0.0.1:$PORT`. */
  PUBLIC_URL: v.optional(v.pipe(v.string(), v.url("PUBLIC_URL must be a URL"))),
  /** HS256 key for JWTs; unset = generated into the data dir on first start. */
  JWT_SECRET: v.optional(hmacSecret("JWT_SECRET")),
  /**
   * During a rotation of JWT_SECRET: the secret being replaced, still accepted for HS256 tokens (never signed with)
   * until it is unset, so tokens issued before the switch keep working until they expire or the rotation ends.
   */
  JWT_PREVIOUS_SECRET: v.optional(hmacSecret("JWT_PREVIOUS_SECRET")),
  JWT_JWKS_URL: v.optional(
    v.pipe(
      v.string(),
      v.url("JWT_JWKS_URL must be a URL"),
      v.check(
        fetchedSafely,
        "JWT_JWKS_URL must be https:// (http only to this machine): whoever can change the key set on its way mints tokens",
      ),
    ),
  ),
  /**
   * Workers only: the key the console's session cookies are sealed with (edge/console/signed-session.ts); unset =
   * derived from JWT_SECRET. A Worker with only JWT_JWKS_URL needs it for `?token=` sign-in.
   */
  CONSOLE_SESSION_SECRET: v.optional(hmacSecret("CONSOLE_SESSION_SECRET")),
  /**
   * Workers only, during a rotation of CONSOLE_SESSION_SECRET: the secret being replaced. Cookies sealed with it
   * keep opening the console until they expire; new ones are sealed with CONSOLE_SESSION_SECRET.
   */
  CONSOLE_SESSION_PREVIOUS_SECRET: v.optional(hmacSecret("CONSOLE_SESSION_PREVIOUS_SECRET")),
  /**
   * The longest a JWT may still be valid: a token whose `exp` is further ahead is refused (401), as Kong's
   * `maximum_expiration` does. Unset: no limit. npm start's admin token is issued for at most this long.
   */
  JWT_MAX_LIFETIME: v.optional(
    v.pipe(
      duration("JWT_MAX_LIFETIME"),
      v.minValue(1000, "JWT_MAX_LIFETIME must be at least 1s, such as 1h"),
    ),
  ),
  JWT_ISSUER: v.optional(v.string()),
  JWT_AUDIENCE: v.optional(v.string()),
  /** Per-subject limit per route class. */
  RATE_LIMIT: v.optional(rate("RATE_LIMIT"), "600/60s"),
  /** When Redis fails: `open` falls back to a local limiter, `closed` refuses with 503. */
  RATE_LIMIT_ON_REDIS_FAILURE: v.optional(
    v.picklist(["open", "closed"], "RATE_LIMIT_ON_REDIS_FAILURE must be open or closed"),
    "open",
  ),
  REDIS_URL: v.optional(connectionUrl("REDIS_URL", /^rediss?:\/\//, "redis://")),
  UPSTASH_REDIS_REST_URL: v.optional(v.pipe(v.string(), v.url("UPSTASH_REDIS_REST_URL must be a URL"))),
  UPSTASH_REDIS_REST_TOKEN: v.optional(v.string()),
  /**
   * What every Redis key of this deployment starts with (the read cache's `<prefix>read:`, the rate limiter's
   * `<prefix>rl`): two deployments sharing one Redis need two, or each answers from the other's cache.
   */
  REDIS_KEY_PREFIX: v.optional(
    v.pipe(
      v.string(),
      v.regex(
        /^[A-Za-z0-9:._-]{1,64}$/,
        "REDIS_KEY_PREFIX must be 1-64 characters of letters, digits, ':', '.', '_' and '-'",
      ),
    ),
    "edgewise:",
  ),
  /** Proxies whose forwarding header (TRUSTED_PROXY_HEADER) is believed: IPs or CIDRs, comma-separated. */
  TRUSTED_PROXIES: v.optional(list, ""),
  /**
   * The one header the trusted proxies write: `x-forwarded-for`, or `forwarded` (RFC 7239). Only that one is read: a
   * proxy passes the other through untouched, so a client could write it.
   */
  TRUSTED_PROXY_HEADER: v.optional(
    v.pipe(
      v.string(),
      v.toLowerCase(),
      v.picklist(
        ["x-forwarded-for", "forwarded"],
        "TRUSTED_PROXY_HEADER must be x-forwarded-for or forwarded",
      ),
    ),
    "x-forwarded-for",
  ),
  /** Origins allowed by CORS, comma-separated; `*` for any. Unset = no CORS headers. */
  CORS_ORIGINS: v.optional(origins, ""),
  /** Largest request body. */
  BODY_LIMIT: v.optional(
    v.pipe(
      bytes("BODY_LIMIT"),
      v.minValue(1024, "BODY_LIMIT must be at least 1kb: a smaller limit refuses ordinary requests with 413"),
    ),
    "64kb",
  ),
  /**
   * Tracing and the embedded trace store: on unless `0`, `off`, `false` or `no` (deploy/tracing.ts and the Worker
   * read it themselves); checked here so that a typo stops the start instead of silently meaning on.
   */
  EDGEWISE_TRACING: v.optional(
    v.pipe(
      v.string(),
      v.check(
        (text) => /^(0|1|on|off|true|false|yes|no)$/i.test(text.trim()),
        "EDGEWISE_TRACING must be on or off (also 1/0, true/false, yes/no)",
      ),
    ),
  ),
  /** Time a request may take before it is aborted with 504. */
  REQUEST_TIMEOUT: v.optional(
    v.pipe(
      durationAtLeast("REQUEST_TIMEOUT", 100, "100ms", "deadlines are kept in 50 ms steps"),
      // Bun closes a connection idle for its idleTimeout, an answer still being worked on included, and takes at
      // most 255 s there; the node sets it to this plus 5 s (deploy/serve.ts idleTimeoutFor).
      v.maxValue(
        250_000,
        "REQUEST_TIMEOUT must be at most 250s: Bun closes a connection idle for 255 s at most",
      ),
    ),
    "10s",
  ),
  /** Split deployment, gateway side: reach actors on this actor host instead of running them here. */
  ACTOR_HOST_URL: v.optional(v.pipe(v.string(), v.url("ACTOR_HOST_URL must be a URL"))),
  /**
   * Split deployment, gateway side: the actor host's PUBLIC_URL, where the queue delivers the messages this gateway
   * publishes for actors (an inbound webhook's restock). Default ACTOR_HOST_URL; set it when the queue reaches the
   * actor host at another address than the gateway does.
   */
  ACTOR_HOST_PUBLIC_URL: v.optional(v.pipe(v.string(), v.url("ACTOR_HOST_PUBLIC_URL must be a URL"))),
  /** Split deployment: the secret gateways and actor hosts sign internal requests with. */
  ACTOR_HOST_SECRET: v.optional(hmacSecret("ACTOR_HOST_SECRET")),
  /**
   * An actor host's, during a rotation of ACTOR_HOST_SECRET: the secret being replaced, still accepted on gateways'
   * requests until unset, so gateways can move to the new secret one by one. Gateways sign with ACTOR_HOST_SECRET.
   */
  ACTOR_HOST_PREVIOUS_SECRET: v.optional(hmacSecret("ACTOR_HOST_PREVIOUS_SECRET")),
  /**
   * Mutual TLS on Bun (a split deployment, see SECURITY.md): this process's certificate and key (PEM files,
   * reloaded when they change). On an actor host they make the listener HTTPS; on a gateway they are the
   * client certificate it presents to ACTOR_HOST_URL; on the broker, the one it delivers with.
   */
  TLS_CERT_FILE: v.optional(v.pipe(v.string(), v.minLength(1))),
  TLS_KEY_FILE: v.optional(v.pipe(v.string(), v.minLength(1))),
  /**
   * The CAs this process trusts for its peers (a PEM bundle): on an actor host, the role CAs whose client
   * certificates it admits (mutual TLS required); on a gateway, the CA that issued the actor host's certificate.
   */
  TLS_CA_FILE: v.optional(v.pipe(v.string(), v.minLength(1))),
  /**
   * Workers behind API Shield mTLS: `1` refuses every request whose `request.cf.tlsClientAuth` does not show a
   * verified, unrevoked client certificate, but /healthz, /readyz, /metrics and the signed delivery endpoint.
   */
  REQUIRE_CLIENT_CERT: v.optional(
    v.pipe(
      v.picklist(["0", "1"], "REQUIRE_CLIENT_CERT must be 0 or 1"),
      v.transform((flag) => flag === "1"),
    ),
    "0",
  ),
  /** With REQUIRE_CLIENT_CERT: only client certificates with these SHA-256 fingerprints (hex, comma-separated). */
  CLIENT_CERT_FINGERPRINTS: v.optional(list, ""),
  /** Inbound webhook sources and their secrets: `source=whsec_…,source2=whsec_…` (a secret; never logged). */
  INBOUND_WEBHOOK_SECRETS: v.optional(v.string()),
  /** `1` lets outbound webhooks reach private and loopback addresses (tests and development only). */
  WEBHOOKS_ALLOW_PRIVATE: v.optional(
    v.pipe(
      v.picklist(["0", "1"], "WEBHOOKS_ALLOW_PRIVATE must be 0 or 1"),
      v.transform((flag) => flag === "1"),
    ),
    "0",
  ),
  /** When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (a secret; never logged). */
  METRICS_TOKEN: v.optional(
    v.pipe(v.string(), v.minLength(16, "METRICS_TOKEN must be at least 16 characters")),
  ),
  /** During a rotation of METRICS_TOKEN: the token being replaced, still accepted on /metrics until unset. */
  METRICS_PREVIOUS_TOKEN: v.optional(
    v.pipe(v.string(), v.minLength(16, "METRICS_PREVIOUS_TOKEN must be at least 16 characters")),
  ),
  LOG_LEVEL: v.optional(
    v.picklist(["debug", "info", "warn", "error"], "LOG_LEVEL must be debug, info, warn or error"),
    "info",
  ),
});

export type Config = v.InferOutput<typeof ConfigSchema>;

/** Broker settings must come as a set: a URL without a token or signing keys is refused at start. */
const brokerSet = [
  "QSTASH_URL",
  "QSTASH_TOKEN",
  "QSTASH_CURRENT_SIGNING_KEY",
  "QSTASH_NEXT_SIGNING_KEY",
] as const;

/** TLS settings come as a set: a CA without a certificate to present, or a certificate without its key, is refused. */
function tlsSetIssue(config: Config): { path: string; message: string } | undefined {
  const { TLS_CERT_FILE: cert, TLS_KEY_FILE: key, TLS_CA_FILE: ca, ACTOR_HOST_URL: actorHost } = config;
  if ((cert === undefined) !== (key === undefined))
    return {
      path: cert ? "TLS_KEY_FILE" : "TLS_CERT_FILE",
      message: "TLS_CERT_FILE and TLS_KEY_FILE go together",
    };
  if (ca !== undefined && cert === undefined)
    return {
      path: "TLS_CERT_FILE",
      message: "TLS_CA_FILE (mutual TLS) needs TLS_CERT_FILE and TLS_KEY_FILE",
    };
  // On a gateway the certificate is the one it presents to its actor host, which only TLS carries: over http://
  // it would go unused, and the hop would be plain text, with or without a CA to check the actor host by.
  if (cert !== undefined && actorHost !== undefined && !actorHost.startsWith("https://"))
    return {
      path: "ACTOR_HOST_URL",
      message: `must be https:// when ${ca === undefined ? "TLS_CERT_FILE" : "TLS_CA_FILE"} is set (mutual TLS)`,
    };
  return undefined;
}

/**
 * QSTASH_CA_FILE is for a broker reached over https: without QSTASH_URL (the embedded broker, in process) or with an
 * http:// one it would go unused, and the hop would be plain text, which no one setting it means.
 */
function brokerTlsIssue(config: Config): { path: string; message: string } | undefined {
  if (config.QSTASH_CA_FILE === undefined) return undefined;
  if (config.QSTASH_URL === undefined)
    return {
      path: "QSTASH_CA_FILE",
      message: "needs QSTASH_URL, an https:// broker (the embedded broker is reached in process)",
    };
  if (!config.QSTASH_URL.startsWith("https://"))
    return { path: "QSTASH_URL", message: "must be https:// when QSTASH_CA_FILE is set" };
  return undefined;
}

/** Parses configuration; reports every bad variable at once, never the value itself (it may be a secret). */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ""),
  );
  const result = v.safeParse(ConfigSchema, present);
  if (result.success) {
    const missing = brokerSet.filter((name) => result.output[name] === undefined);
    if (result.output.QSTASH_URL !== undefined && missing.length > 0) {
      throw new EdgewiseError(
        "config.invalid",
        `Invalid configuration:\n  QSTASH_URL is set, so ${missing.join(", ")} must be too`,
        {
          issues: missing.map((name) => ({ path: name, message: "required when QSTASH_URL is set" })),
        },
      );
    }
    if (result.output.ACTOR_HOST_URL !== undefined && result.output.ACTOR_HOST_SECRET === undefined) {
      throw new EdgewiseError(
        "config.invalid",
        "Invalid configuration:\n  ACTOR_HOST_URL needs ACTOR_HOST_SECRET",
        {
          issues: [{ path: "ACTOR_HOST_SECRET", message: "required when ACTOR_HOST_URL is set" }],
        },
      );
    }
    const rotation = rotationIssue(result.output);
    if (rotation) {
      throw new EdgewiseError("config.invalid", `Invalid configuration:\n  ${rotation.message}`, {
        issues: [rotation.issue],
      });
    }
    if (result.output.ACTOR_HOST_PUBLIC_URL !== undefined && result.output.ACTOR_HOST_URL === undefined) {
      throw new EdgewiseError(
        "config.invalid",
        "Invalid configuration:\n  ACTOR_HOST_PUBLIC_URL is a gateway's setting: it needs ACTOR_HOST_URL",
        {
          issues: [{ path: "ACTOR_HOST_URL", message: "required when ACTOR_HOST_PUBLIC_URL is set" }],
        },
      );
    }
    const tlsIssue = tlsSetIssue(result.output) ?? brokerTlsIssue(result.output);
    if (tlsIssue) {
      throw new EdgewiseError(
        "config.invalid",
        `Invalid configuration:\n  ${tlsIssue.path}: ${tlsIssue.message}`,
        {
          issues: [tlsIssue],
        },
      );
    }
    if (
      (result.output.UPSTASH_REDIS_REST_URL === undefined) !==
      (result.output.UPSTASH_REDIS_REST_TOKEN === undefined)
    ) {
      throw new EdgewiseError(
        "config.invalid",
        "Invalid configuration:\n  UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN go together",
        { issues: [{ path: "UPSTASH_REDIS_REST_TOKEN", message: "set both or neither" }] },
      );
    }
    return result.output;
  }
  const lines = result.issues.map((issue) => {
    const name = issue.path?.map((item) => String(item.key)).join(".") ?? "configuration";
    return `  ${name}: ${issue.message}`;
  });
  throw new EdgewiseError("config.invalid", `Invalid configuration:\n${lines.join("\n")}`, {
    issues: result.issues.map((issue) => ({
      path: issue.path?.map((item) => String(item.key)).join(".") ?? "",
      message: issue.message,
    })),
  });
}
