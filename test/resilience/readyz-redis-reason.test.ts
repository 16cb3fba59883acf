// /readyz's Redis check names Redis's error reply (NOPERM from an ACL) on a node over TCP; "unreachable" when it is away.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
