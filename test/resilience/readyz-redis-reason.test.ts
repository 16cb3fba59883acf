// /readyz's Redis check names Redis's error reply (NOPERM from an ACL) on a node over TCP; "unreachable" when it is away.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseRedisUrl, RespConnection } from "../../deploy/local/redis-bridge/connection.ts";
import { direct } from "../redis-bridge/helpers.ts";
import { closedPort } from "../rate-limit/support.ts";
import { startLocalNode } from "../support/local-node.ts";

/** A redis-server of this file's own: its ACL user is the server's, not to be set on the shared one. */
const port = closedPort();
const password = `pw-SECRET-${crypto.randomUUID()}`;
/** A user that may touch only `elsewhere:` keys: the probe's `denied:ping` is refused with NOPERM. */
const deniedUrl = `redis://denied:${password}@127.0.0.1:${port}`;
let redisServer: ReturnType<typeof Bun.spawn> | undefined;

interface Readiness {
  dependencies: { redis?: { ok: boolean; reason?: string } };
}

beforeAll(async () => {
  redisServer = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdout: "ignore", stderr: "ignore" },
  );
  let admin: RespConnection | undefined;
  for (let tries = 0; !admin; tries++) {
    admin = await RespConnection.open(parseRedisUrl(`redis://127.0.0.1:${port}`)).catch(() => undefined);
    if (!admin && tries > 100) throw new Error("redis-server did not start");
    if (!admin) await Bun.sleep(50);
  }
  const acl = ["ACL", "SETUSER", "denied", "on", `>${password}`, "~elsewhere:*", "+@all", "-@dangerous"];
  expect(await direct(admin, ...acl)).toEqual(expect.objectContaining({ text: "OK" }));
  admin.close();
}, 30_000);

afterAll(async () => {
  redisServer?.kill();
  await redisServer?.exited;
});

test("a node: NOPERM is the reason while Redis refuses the probe's key, unreachable once Redis is gone", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-readyz-reason-"));
  const lines: string[] = [];
  const node = await startLocalNode(
    dataDir,
    { REDIS_URL: deniedUrl, REDIS_KEY_PREFIX: "denied:" },
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
    redisServer?.kill();
    await redisServer?.exited;
    await Bun.sleep(1_100); // past /readyz's reuse of a result (a failed one is not reused anyway)
    const away = (await (await fetch(`${node.url}/readyz`)).json()) as Readiness;
    expect(away.dependencies.redis).toEqual(expect.objectContaining({ ok: false, reason: "unreachable" }));
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
