// The error handler's log levels: a bug at error, the system protecting itself (timeouts, shed load, an open
// breaker) at warn, a caller's mistake at debug.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { EdgewiseError } from "../shared/errors/index.ts";
import { createLogger } from "../shared/telemetry/log/index.ts";
import type { GatewayEnv } from "./env.ts";
import { errorHandler } from "./errors.ts";

test("an open breaker's 503 is a warning, as a timeout's or an unavailable dependency's; a bug is an error", async () => {
  const lines: Array<{ level: string; msg: string; error?: { code?: string } }> = [];
  const logger = createLogger({ level: "debug", sink: (line) => lines.push(JSON.parse(line)) });
  const app = new Hono<GatewayEnv>();
  app.onError(errorHandler({ logger }));
  const thrown: Record<string, () => unknown> = {
    "breaker.open": () => new EdgewiseError("breaker.open", "A dependency is unavailable; retry in 5 s."),
    timeout: () => new EdgewiseError("timeout", "took too long"),
    unavailable: () => new EdgewiseError("unavailable", "Postgres is unavailable; retry"),
    internal: () => new Error("a bug"),
    "request.invalid": () => new EdgewiseError("request.invalid", "bad"),
  };
  app.get("/:what", (c) => {
    throw (thrown[c.req.param("what")] as () => unknown)();
  });
  const levels: Record<string, string | undefined> = {};
  for (const what of Object.keys(thrown)) {
    lines.length = 0;
    await app.request(`/${what}`);
    levels[what] = lines[0]?.level;
  }
  // breaker.open was logged at error, as a bug, once per request refused during an outage.
  expect(levels).toEqual({
    "breaker.open": "warn",
    timeout: "warn",
    unavailable: "warn",
    internal: "error",
    "request.invalid": "debug",
  });
});
