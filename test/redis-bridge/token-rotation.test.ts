// Rotating the REST bridge's token without a cutover: UPSTASH_REDIS_REST_PREVIOUS_TOKEN keeps the old one accepted.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { type Started, startProcess } from "../e2e/process.ts";
import { TEST_REDIS_URL } from "./helpers.ts";

const main = join(import.meta.dir, "../../deploy/local/redis-bridge/main.ts");
const oldToken = `old_${crypto.randomUUID()}`;
const newToken = `new_${crypto.randomUUID()}`;
let running: Started | undefined;
afterAll(async () => {
  await running?.kill("SIGTERM");
});

/** Stops the bridge process, if any, and starts main.ts with `settings`. */
async function restart(settings: Record<string, string>): Promise<Started> {
  await running?.kill("SIGTERM");
  running = await startProcess([process.execPath, main], {
    cwd: import.meta.dir,
    env: {
      REDIS_URL: TEST_REDIS_URL,
      REDIS_BRIDGE_PORT: "0",
      UPSTASH_REDIS_REST_PREVIOUS_TOKEN: "",
      ...settings,
    },
    pattern: /UPSTASH_REDIS_REST_URL=(\S+)/,
    timeoutMs: 30_000,
  });
  return running;
}

/** PING as @upstash/redis sends it: 200 when the token is taken, 401 (WRONGPASS) when not. */
const ping = async (url: string, token: string) =>
  (
    await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: '["PING"]',
    })
  ).status;

test("in process: the previous token is taken beside the token, by header and by ?_token=; a third is not", async () => {
  const bridge = await startRedisBridge({
    port: 0,
    redisUrl: TEST_REDIS_URL,
    token: newToken,
    previousToken: oldToken,
  });
  try {
    expect([
      await ping(bridge.url, newToken),
      await ping(bridge.url, oldToken),
      await ping(bridge.url, "a-third-token"),
    ]).toEqual([200, 200, 401]);
    expect((await fetch(`${bridge.url}/ping?_token=${oldToken}`)).status).toBe(200);
  } finally {
    await bridge.stop();
  }
  await expect(
    startRedisBridge({ port: 0, redisUrl: TEST_REDIS_URL, token: newToken, previousToken: newToken }),
  ).rejects.toThrow("previousToken must differ from token");
});

test("npm run redis-bridge: the old token works through the rotation, and is refused once it is unset", async () => {
  let bridge = await restart({ UPSTASH_REDIS_REST_TOKEN: oldToken });
  expect([await ping(bridge.match, oldToken), await ping(bridge.match, newToken)]).toEqual([200, 401]);

  bridge = await restart({ UPSTASH_REDIS_REST_TOKEN: newToken, UPSTASH_REDIS_REST_PREVIOUS_TOKEN: oldToken });
  expect([await ping(bridge.match, oldToken), await ping(bridge.match, newToken)]).toEqual([200, 200]);
  expect(bridge.output()).toContain("UPSTASH_REDIS_REST_PREVIOUS_TOKEN is still accepted");
  expect(bridge.output()).not.toContain(oldToken);
  expect(bridge.output()).not.toContain(newToken);

  bridge = await restart({ UPSTASH_REDIS_REST_TOKEN: newToken });
  expect([await ping(bridge.match, oldToken), await ping(bridge.match, newToken)]).toEqual([401, 200]);
  expect(bridge.output()).not.toContain("UPSTASH_REDIS_REST_PREVIOUS_TOKEN");
}, 120_000);

test.each([
  [{ UPSTASH_REDIS_REST_PREVIOUS_TOKEN: oldToken }, "set UPSTASH_REDIS_REST_TOKEN to the new token"],
  [
    { UPSTASH_REDIS_REST_TOKEN: newToken, UPSTASH_REDIS_REST_PREVIOUS_TOKEN: newToken },
    "must be the token being replaced",
  ],
])("a previous token that cannot be one stops the start (exit 1), never printed", async (settings, said) => {
  const child = Bun.spawn([process.execPath, main], {
    env: {
      ...process.env,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_BRIDGE_PORT: "0",
      UPSTASH_REDIS_REST_TOKEN: "",
      ...settings,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const started = setTimeout(() => child.kill(), 15_000);
  const [code, stderr, stdout] = await Promise.all([
    child.exited,
    new Response(child.stderr).text(),
    new Response(child.stdout).text(),
  ]);
  clearTimeout(started);
  expect(code).toBe(1);
  expect(stderr).toContain(said);
  expect(stderr + stdout).not.toContain(oldToken);
  expect(stderr + stdout).not.toContain(newToken);
});
