// A node whose Redis is down logs the rate limiter's failure once per interval, not once per request, and says why.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../shared/clock/index.ts";
import { startLocalNode } from "../test/support/local-node.ts";
import { restartablePort } from "../test/support/ports.ts";
import { everyInterval } from "./node.ts";

// One data dir for the file's two nodes, one after the other: a fresh one cost each its embedded PGlite's first
// setup, most of a start; what they check is their own log lines and /readyz.
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-rl-log-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

test("Redis down: 40 requests, each counted locally, leave one warning that says how many failed", async () => {
  const unused = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const closedPort = unused.port;
  unused.stop(true);
  const lines: string[] = [];
  const node = await startLocalNode(
    dataDir,
    { REDIS_URL: `redis://127.0.0.1:${closedPort}` },
    { log: (line) => lines.push(line) },
  );
  try {
    const headers = { authorization: `Bearer ${node.adminToken}` };
    for (let i = 0; i < 40; i++) {
      const response = await fetch(`${node.url}/v1/inventory/rl-log`, { headers });
      await response.body?.cancel();
      expect(response.status).toBe(404); // allowed by the local fallback; the sku was never set
    }
    const warnings = lines.filter((line) => line.includes("rate limiter: Redis failed"));
    // One line per request before (40 here; thousands a second under load).
    expect(warnings.length).toBe(1);
    expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: "warn", failures: 1 });
  } finally {
    await node.stop();
  }
}, 60_000);

// Bun's RedisClient (and ioredis) say "Connection closed" for a refused password too: an operator told "unreachable"
// looks at the network, not at the password in REDIS_URL.
test("a wrong Redis password is named: the warning quotes Redis's refusal, /readyz says refused", async () => {
  const port = restartablePort();
  const redis = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--requirepass", "right-password"].concat(
      ["--save", "", "--appendonly", "no"],
    ),
    { stdout: "ignore", stderr: "ignore" },
  );
  const lines: string[] = [];
  try {
    for (let tries = 0; ; tries++) {
      const up = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
        (socket) => (socket.end(), true),
        () => false,
      );
      if (up) break;
      if (tries > 100) throw new Error("redis-server did not start");
      await Bun.sleep(50);
    }
    const node = await startLocalNode(
      dataDir,
      { REDIS_URL: `redis://default:wrong-PLANTED@127.0.0.1:${port}` },
      { log: (line) => lines.push(line) },
    );
    try {
      const response = await fetch(`${node.url}/v1/inventory/rl-auth`, {
        headers: { authorization: `Bearer ${node.adminToken}` },
      });
      await response.body?.cancel();
      expect(response.status).toBe(404); // counted by the local fallback, as with any Redis failure
      const warning = lines.find((line) => line.includes("rate limiter: Redis failed")) ?? "";
      expect(warning).toContain("Redis refused the connection (WRONGPASS");
      const ready = (await (await fetch(`${node.url}/readyz`)).json()) as {
        dependencies: { redis: { ok: boolean; reason?: string } };
      };
      expect(ready.dependencies.redis).toMatchObject({ ok: false, reason: "refused" });
      expect(lines.join("\n")).not.toContain("PLANTED");
    } finally {
      await node.stop();
    }
  } finally {
    redis.kill();
    await redis.exited;
  }
}, 60_000);

test("everyInterval: the first failure, then one per interval counting those in between", () => {
  let now = 0;
  const told: number[] = [];
  const report = everyInterval(
    10_000,
    (_error, failures) => told.push(failures),
    () => now,
  );
  for (now = 0; now < 25_000; now += 1_000) report(new Error("down"));
  expect(told).toEqual([1, 10, 10]);
});

test("everyInterval: a wall clock stepped back an hour does not silence the failures for the hour", () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const told: number[] = [];
  const report = everyInterval(
    10_000,
    (_error, failures) => told.push(failures),
    () => clock.now(),
  );
  report(new Error("down"));
  clock.step(-3_600_000);
  // The first failure after the step is told at once; the interval counts from it.
  for (let i = 0; i < 11; i++) {
    clock.advance(1_000);
    report(new Error("down"));
  }
  expect(told).toEqual([1, 1, 10]);
});
