// Which Redis errors count against its breaker: only Redis away or saying it cannot serve; any other reply is it up.
import { defaultIsFailure } from "./breaker-options.ts";

/**
 * Error replies in which Redis says it cannot serve now: still loading its data set, busy in a script, a replica
 * without its master or read-only after a failover, out of memory, unable to persist (MISCONF), a cluster down or
 * resharding, too few replicas, or refusing the connection's credentials.
 */
const unavailableReplies = new Set([
  "LOADING",
  "BUSY",
  "MASTERDOWN",
  "READONLY",
  "OOM",
  "MISCONF",
  "CLUSTERDOWN",
  "TRYAGAIN",
  "NOREPLICAS",
  "NOAUTH",
  "WRONGPASS",
]);

/**
 * The first word of an error reply Redis sent (`NOPERM`, `WRONGPASS`, `LOADING`, `ERR`), or undefined for an error of
 * the client or the network. Only that word: the rest of a reply may name keys. /readyz's Redis check shows it as
 * its reason, so an ACL's refusal is not taken for a network problem. Over TCP the
 * clients mark Redis's replies: Bun's RedisClient with `code: "ERR_REDIS_SERVER_ERROR"`, ioredis with a
 * `ReplyError`. Over REST, @upstash/redis throws every error body as an `UpstashError` (`<reply>, command was: …`, or `Command failed: <reply>`),
 * the HTTP status dropped; the local bridge's own failures (`ERR redis-bridge: …`: its 503 when it cannot reach
 * Redis, and its 500 when Redis refuses its AUTH or SELECT on reconnecting) and Upstash's request quota (`ERR max …
 * limit exceeded`) are Redis unavailable, not a reply.
 */
export function redisReplyCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const marked =
    (error as { code?: unknown }).code === "ERR_REDIS_SERVER_ERROR" ||
    error.name === "ReplyError" ||
    error.name === "UpstashError";
  if (!marked) return undefined;
  // The SDK's auto-pipelining says `Command failed: <reply>`.
  const reply = error.message.replace(/^Command failed: /, "");
  if (error.name === "UpstashError" && /^ERR (redis-bridge:|max .*limit exceeded)/i.test(reply)) {
    return undefined;
  }
  return /^([A-Z][A-Z_]*)\b/.exec(reply)?.[1];
}

/**
 * How the local REST bridge's error begins when Redis refused the bridge's own AUTH or SELECT on connecting (its
 * 500, `ERR redis-bridge: Redis refused the connection setup: WRONGPASS …`): the bridge writes it with this text
 * (deploy/local/redis-bridge/connection.ts), and REST carries nothing but the text.
 */
export const bridgeSetupRefused = "redis-bridge: Redis refused the connection setup: ";

/**
 * /readyz's reason for a failed Redis check: the code of an error reply Redis sent (`redisReplyCode`: NOPERM from an
 * ACL, LOADING), or "refused" when Redis refused the local REST bridge's own connection setup (its AUTH after a
 * password change: WRONGPASS, NOAUTH; or its SELECT), which is what a node over TCP says of Redis refusing its
 * connection (redis-tcp-commands.ts). Undefined otherwise, for "unreachable". Only for naming: to the breaker that
 * refusal is the bridge failing, and counts as it did (`redisReplyCode` stays undefined for it).
 */
export function redisCheckReason(error: unknown): string | undefined {
  const code = redisReplyCode(error);
  if (code !== undefined || !(error instanceof Error) || error.name !== "UpstashError") return code;
  const reply = error.message.replace(/^Command failed: /, "");
  return reply.startsWith(`ERR ${bridgeSetupRefused}`) ? "refused" : undefined;
}

/**
 * The `isFailure` of a breaker in front of Redis, as `sqlIsFailure` is for Postgres: an error reply Redis sent counts
 * only for the codes above. Any other reply is Redis answering the command, which proves it up: NOSCRIPT (its script
 * cache lost to a restart, a failover or SCRIPT FLUSH), WRONGTYPE, a script's error, an `ERR` about the command. A
 * NOSCRIPT counted as a failure opened the breaker after a burst of them, and then the EVAL that reloads the script
 * was refused by the open breaker and every half-open probe was another EVALSHA meeting NOSCRIPT: the breaker never
 * closed. The connection refused or lost, a timeout, a stuck connection, and Redis's refusals above still count.
 */
export function redisIsFailure(error: unknown): boolean {
  const code = redisReplyCode(error);
  if (code !== undefined) return unavailableReplies.has(code);
  return defaultIsFailure(error);
}
