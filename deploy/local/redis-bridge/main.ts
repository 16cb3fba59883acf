// CLI: `npx bun deploy/local/redis-bridge/main.ts` serves Upstash's Redis REST API over a local Redis.
import { exitWithHelp } from "../../cli-help.ts";
import { stopOnSignals } from "../../shutdown.ts";
import { randomBytes } from "node:crypto";
import { parseDuration } from "../../../shared/config/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { maskSecrets } from "../../../shared/telemetry/log/redact.ts";
import { DEFAULT_PORT, DEFAULT_REDIS_URL, startRedisBridge } from "./index.ts";

exitWithHelp([
  "usage: npm run redis-bridge",
  "Upstash's Redis REST API over a Redis, configured from the environment (deploy/local/redis-bridge/README.md):",
  "  REDIS_BRIDGE_PORT (8079; 0 picks a free port), REDIS_BRIDGE_HOST (127.0.0.1), REDIS_URL (redis://127.0.0.1:6379)",
  "  UPSTASH_REDIS_REST_TOKEN (generated and printed once), REDIS_BRIDGE_TIMEOUT (30s)",
  "  UPSTASH_REDIS_REST_PREVIOUS_TOKEN (during a rotation of UPSTASH_REDIS_REST_TOKEN: the old token, still accepted)",
  "It prints UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN for a node or a Worker. A bad value, or a Redis it",
  "cannot reach at start, stops it with exit code 1.",
]);

const env = (name: string) => (process.env[name] === "" ? undefined : process.env[name]);

function port(): number {
  const text = env("REDIS_BRIDGE_PORT");
  if (text === undefined) return DEFAULT_PORT;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new EdgewiseError("config.invalid", `REDIS_BRIDGE_PORT is not valid (got ${JSON.stringify(text)})`);
  }
  return value;
}

/** REDIS_BRIDGE_TIMEOUT, a duration such as 30s: how long a request waits for Redis. */
function replyTimeoutMs(): number | undefined {
  const text = env("REDIS_BRIDGE_TIMEOUT");
  if (text === undefined) return undefined;
  const value = parseDuration(text);
  if (value === undefined || value <= 0) {
    throw new EdgewiseError(
      "config.invalid",
      `REDIS_BRIDGE_TIMEOUT must be a duration such as 500ms, 10s or 1m (got ${JSON.stringify(text)})`,
    );
  }
  return value;
}

const given = env("UPSTASH_REDIS_REST_TOKEN");
const previous = env("UPSTASH_REDIS_REST_PREVIOUS_TOKEN");

/** The token being replaced, accepted beside the configured one; never beside a generated one, nor the same one. */
function previousToken(): string | undefined {
  if (previous === undefined) return undefined;
  if (given === undefined) {
    throw new EdgewiseError(
      "config.invalid",
      "UPSTASH_REDIS_REST_PREVIOUS_TOKEN is accepted beside UPSTASH_REDIS_REST_TOKEN during a rotation: set UPSTASH_REDIS_REST_TOKEN to the new token",
    );
  }
  if (previous === given) {
    throw new EdgewiseError(
      "config.invalid",
      "UPSTASH_REDIS_REST_PREVIOUS_TOKEN must be the token being replaced, not UPSTASH_REDIS_REST_TOKEN itself",
    );
  }
  return previous;
}

// Inside the chain, so that a bad variable ends the start with its one-line message, as a failed start does.
const bridge = await Promise.resolve()
  .then(() => {
    const timeout = replyTimeoutMs();
    const replaced = previousToken();
    return startRedisBridge({
      port: port(),
      hostname: env("REDIS_BRIDGE_HOST") ?? "127.0.0.1",
      redisUrl: env("REDIS_URL") ?? DEFAULT_REDIS_URL,
      token: given ?? randomBytes(24).toString("base64url"),
      ...(timeout !== undefined ? { replyTimeoutMs: timeout } : {}),
      ...(replaced !== undefined ? { previousToken: replaced } : {}),
    });
  })
  .catch((error: unknown) => {
    // Masked as the bridge's log lines are: a URL that does not parse may be quoted whole, password and all.
    console.error(maskSecrets(error instanceof Error ? error.message : String(error)));
    process.exit(1);
  });

// A rotation left half done keeps the old token honoured: said at every start until it is unset.
if (previous !== undefined) {
  console.error(
    "[redis-bridge] warning: UPSTASH_REDIS_REST_PREVIOUS_TOKEN is still accepted beside UPSTASH_REDIS_REST_TOKEN (a token rotation under way); once every node and Worker uses the new token, restart without it to refuse the old one",
  );
}

// A generated token is printed once, so it can be copied; a token the user set is never printed.
const redisUrl = new URL(env("REDIS_URL") ?? DEFAULT_REDIS_URL);
redisUrl.password = redisUrl.password ? "***" : "";
console.log(
  [
    `Upstash REST bridge running at ${bridge.url} → Redis ${redisUrl.href}`,
    `UPSTASH_REDIS_REST_URL=${bridge.url}`,
    `UPSTASH_REDIS_REST_TOKEN=${given === undefined ? bridge.token : "(as configured)"}`,
  ].join("\n"),
);

stopOnSignals(() => bridge.stop());
