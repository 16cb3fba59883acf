// /readyz's Redis check names Redis's refusals (NOPERM from an ACL; a stale password, over TCP or the REST bridge), else "unreachable".
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseRedisUrl, RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import { startRedisBridge } from "../../deploy/local/redis-bridge/index.ts";
import { direct } from "../redis-bridge/helpers.ts";
import { startLocalNode } from "../support/local-node.ts";
import { type AclRedis, startAclRedis } from "../support/redis-acl-server.ts";

const password = `pw-SECRET-${crypto.randomUUID()}`;
/** A user that may touch only `elsewhere:` keys: the probe's `denied:ping` is refused with NOPERM. */
let redis: AclRedis;

interface Readiness {
  dependencies: { redis?: { ok: boolean; reason?: string } };
}

beforeAll(async () => {
  redis = await startAclRedis("denied", "elsewhere:*", password);
}, 30_000);

afterAll(async () => {
  await redis?.stop();
});

test("a node: NOPERM is the reason while Redis refuses the probe's key, unreachable once Redis is gone", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-readyz-reason-"));
  const lines: string[] = [];
  const node = await startLocalNode(
    dataDir,
    { REDIS_URL: redis.url, REDIS_KEY_PREFIX: "denied:" },
    { log: (line) => lines.push(line) },
  );
  try {
    const response = await fetch(`${node.url}/readyz`);
    const text = await response.text();
    // Before, any failure was "unreachable": an ACL's refusal looked like a network problem.
    expect((JSON.parse(text) as Readiness).dependencies.redis).toEqual(
      expect.objectContaining({ ok: false, reason: "NOPERM" }),
    );
    // Only the reply's first word: neither the key Redis named nor the password.
    expect(text).not.toContain("denied:ping");
    expect(text).not.toContain("SECRET");
    await redis.stop();
    await Bun.sleep(1_100); // past /readyz's reuse of a result (a failed one is not reused anyway)
    const away = (await (await fetch(`${node.url}/readyz`)).json()) as Readiness;
    expect(away.dependencies.redis).toEqual(expect.objectContaining({ ok: false, reason: "unreachable" }));
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);

test('a node through the REST bridge: Redis refusing the bridge\'s AUTH is "refused", as over TCP, not unreachable', async () => {
  // The bridge's own user: its password changes under it and its connections are dropped, as an operator rotates it.
  const bridgeUser = await startAclRedis("bridge", "*", password);
  const bridge = await startRedisBridge({
    port: 0,
    redisUrl: bridgeUser.url,
    token: `test-${crypto.randomUUID()}`,
    log: () => {},
  });
  const dataDirs = [
    mkdtempSync(join(tmpdir(), "edgewise-readyz-rest-")),
    mkdtempSync(join(tmpdir(), "edgewise-readyz-tcp-")),
  ];
  const rest = await startLocalNode(dataDirs[0] as string, {
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: bridge.token,
  });
  try {
    const ready = (await (await fetch(`${rest.url}/readyz`)).json()) as Readiness;
    expect(ready.dependencies.redis).toEqual(expect.objectContaining({ ok: true }));
    const admin = await RespConnection.open(parseRedisUrl(bridgeUser.url.replace(/\/\/[^@]*@/, "//")));
    await direct(admin, "ACL", "SETUSER", "bridge", "resetpass", `>${password}-rotated`);
    await direct(admin, "CLIENT", "KILL", "USER", "bridge");
    admin.close();
    await Bun.sleep(1_100); // past /readyz's reuse of a result that found everything up
    const response = await fetch(`${rest.url}/readyz`);
    const text = await response.text();
    // Before, "unreachable": the bridge's 500 for the refused AUTH read as Redis away.
    expect((JSON.parse(text) as Readiness).dependencies.redis).toEqual(
      expect.objectContaining({ ok: false, reason: "refused" }),
    );
    expect(text).not.toContain("SECRET");
    // A node over TCP with the same stale password says the same.
    const tcp = await startLocalNode(dataDirs[1] as string, { REDIS_URL: bridgeUser.url });
    try {
      const overTcp = (await (await fetch(`${tcp.url}/readyz`)).json()) as Readiness;
      expect(overTcp.dependencies.redis).toEqual(expect.objectContaining({ ok: false, reason: "refused" }));
    } finally {
      await tcp.stop();
    }
  } finally {
    await rest.stop();
    await bridge.stop();
    await bridgeUser.stop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
