// CLI: `npx bun deploy/local/redis-bridge/main.ts` serves Upstash's Redis REST API over a local Redis.
import { stopOnSignals } from "../../shutdown.ts";
import { randomBytes } from "node:crypto";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { DEFAULT_PORT, DEFAULT_REDIS_URL, startRedisBridge } from "./index.ts";

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

const given = env("UPSTASH_REDIS_REST_TOKEN");
const bridge = await startRedisBridge({
  port: port(),
  hostname: env("REDIS_BRIDGE_HOST") ?? "127.0.0.1",
  redisUrl: env("REDIS_URL") ?? DEFAULT_REDIS_URL,
  token: given ?? randomBytes(24).toString("base64url"),
}).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});

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
