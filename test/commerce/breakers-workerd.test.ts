// The production Worker's breakers under `wrangler dev` (root wrangler.toml): with Postgres and the broker down,
// the `postgres` breaker trips, requests fail fast with 503, and /readyz and /metrics show it; and a second
// wrangler dev on the same state (a new isolate, with empty memory) learns the trip from the BreakerCoordinator
// object instead of finding out by five failures of its own.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Started, startProcess } from "../e2e/process.ts";
import { restartablePort } from "../support/ports.ts";
import { freePort, wranglerDev, wranglerEnv, wranglerRecords } from "../support/wrangler.ts";

const root = join(import.meta.dir, "../..");
const persistTo = mkdtempSync(join(tmpdir(), "edgewise-breakers-workerd-"));
const dead = freePort(); // nothing listens there: Postgres and the broker are down
let worker: Started | undefined;

async function startWorker(): Promise<Started> {
  const port = restartablePort();
  return startProcess(
    wranglerDev({
      port,
      persistTo,
      // Throwaway test values; production secrets go through `wrangler secret put`.
      vars: {
        QSTASH_URL: `http://127.0.0.1:${dead}`,
        QSTASH_TOKEN: "test-token",
        QSTASH_CURRENT_SIGNING_KEY: `sig_${crypto.randomUUID().replaceAll("-", "")}`,
        QSTASH_NEXT_SIGNING_KEY: `sig_${crypto.randomUUID().replaceAll("-", "")}`,
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${dead}/none`,
        RATE_LIMIT: "1000000/60s",
        CORS_ORIGINS: "https://app.example.com",
      },
    }),
    { cwd: root, env: wranglerEnv, pattern: /Ready on (https?:\/\/[\w.]+:\d+)/, timeoutMs: 40_000 },
  );
}

beforeAll(async () => {
  worker = await startWorker();
}, 60_000);

afterAll(async () => {
  if (process.env.EDGEWISE_TEST_WORKER_LOG === "1") console.log(worker?.output());
  await worker?.kill();
  rmSync(persistTo, { recursive: true, force: true });
});

interface Readiness {
  status: string;
  dependencies: Record<string, { ok: boolean; critical: boolean; breaker?: string }>;
}

test("Postgres down: the breaker trips, requests fail fast, /readyz and /metrics show it", async () => {
  const base = worker?.match as string;
  const ready = await fetch(`${base}/readyz`);
  expect(ready.status).toBe(503);
  const before = (await ready.json()) as Readiness;
  expect(before.dependencies.postgres).toMatchObject({ ok: false, critical: true, breaker: "closed" });
  expect(before.dependencies.broker).toMatchObject({ ok: false, critical: true, breaker: "closed" });

  // Each request that needs the tables tries to create them, through the `postgres` breaker: five failures in a
  // row open it, and from then on the answer is 503 at once, with Retry-After.
  const codes: string[] = [];
  for (let i = 0; i < 6; i++) {
    const response = await fetch(`${base}/v1/orders?customerId=c1`, {
      headers: { origin: "https://app.example.com" },
    });
    expect(response.status).toBe(503);
    // The tables cannot be made, and that is answered as any error of the app: its headers, CORS included, so a
    // page sees the 503 (before, it was answered outside the app, without CORS: a browser saw a network error).
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    expect(response.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._~-]+$/);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(response.headers.get("access-control-expose-headers")).toContain("Retry-After");
    codes.push(((await response.json()) as { code: string }).code);
    if (i === 5) expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
  }
  expect(codes).toEqual([
    "unavailable",
    "unavailable",
    "unavailable",
    "unavailable",
    "unavailable",
    "breaker.open",
  ]);

  const after = (await (await fetch(`${base}/readyz`)).json()) as Readiness;
  expect(after.dependencies.postgres?.breaker).toBe("open");
  const metrics = await (await fetch(`${base}/metrics`)).text();
  expect(metrics).toContain('edgewise_breaker_state{dependency="postgres",state="open"} 1');
  expect(metrics).toContain(
    'edgewise_breaker_transitions_total{dependency="postgres",from="closed",to="open"} 1',
  );
  // The trip went to the coordinator in the background (a failed sync would say so in the log).
  await Bun.sleep(500);
  expect(worker?.output()).not.toContain("coordinator unreachable");
}, 60_000);

test("a new isolate learns the trip from the coordinator: it fails fast after one call, not five", async () => {
  await worker?.kill();
  worker = await startWorker(); // same --persist-to: the coordinator object kept its state
  const base = worker.match;
  const codes: string[] = [];
  const call = async () => {
    const response = await fetch(`${base}/v1/orders?customerId=c1`);
    codes.push(((await response.json()) as { code: string }).code);
  };
  await call();
  // The first call's sync runs in its waitUntil, after the response: wait until /readyz shows its breaker open (10 s
  // at most; its check does not go through the breaker) rather than a fixed 200 ms a loaded machine can outlast.
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(100)) {
    const ready = (await (await fetch(`${base}/readyz`)).json()) as Readiness;
    if (ready.dependencies.postgres?.breaker === "open") break;
  }
  await call();
  // Alone it would take five failures; the first call made the breaker, whose first sync brought the trip.
  expect(codes).toEqual(["unavailable", "breaker.open"]);
  // The Worker's JSON line, as a node logs a breaker opening: at warn, the reason a field. wrangler relays the
  // Worker's console output on its own schedule, apart from the answers: waited for (5 s at most), not assumed.
  const opened = () =>
    wranglerRecords(worker?.output() ?? "").some(
      (line) => line.msg === "breaker postgres: closed → open" && line.reason === "coordinated",
    );
  for (let i = 0; i < 100 && !opened(); i++) await Bun.sleep(50);
  expect(wranglerRecords(worker.output())).toContainEqual(
    expect.objectContaining({
      level: "warn",
      msg: "breaker postgres: closed → open",
      breaker: "postgres",
      reason: "coordinated",
    }),
  );
}, 60_000);
