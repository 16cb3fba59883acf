// The gateway smoke test on Deno: `deno run edge/entries/deno.ts` (node:sqlite, Deno.serve, PGlite, broker).
import { afterAll, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { SignJWT } from "jose";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { denoEntryCommand, freePort, startProcess } from "./process.ts";
import { gatewaySmoke } from "./smoke.ts";

const root = resolve(import.meta.dir, "../..");

// One data dir for the nodes the file starts, one after the other: a fresh one cost each start its embedded PGlite's
// first setup, most of a start.
const dataDir = mkdtempSync(join(tmpdir(), "edgewise-smoke-deno-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** `deno run edge/entries/deno.ts` on a free port and the file's data dir, RATE_LIMIT=5/60s, plus `env`. */
async function startDenoNode(env: Record<string, string>, pattern: RegExp) {
  let port = freePort();
  const settings = () => ({
    PORT: String(port),
    HOST: "127.0.0.1",
    RATE_LIMIT: "5/60s",
    EDGEWISE_DATA_DIR: dataDir,
    ...env,
  });
  const server = await startProcess(denoEntryCommand(root), {
    cwd: root,
    env: settings(),
    pattern,
    again: () => {
      port = freePort();
      return { command: denoEntryCommand(root), env: settings() };
    },
  });
  return { server, base: `http://127.0.0.1:${port}` };
}

test("smoke on Deno: authentication, rate limit, actor ask; metrics pushed over OTLP", async () => {
  // An OTLP/HTTP collector on 127.0.0.1: the Deno node pushes its metrics here (deploy/metrics-export.ts).
  const exports: Array<{
    resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<{ name: string }> }> }>;
  }> = [];
  const collector = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      exports.push(await request.json());
      return new Response("{}");
    },
  });
  const { server, base } = await startDenoNode(
    {
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `http://127.0.0.1:${collector.port}/v1/metrics`,
      OTEL_METRIC_EXPORT_INTERVAL: "200",
    },
    /admin token[^:]*: (\S+)/,
  );
  try {
    await gatewaySmoke(base, server.match);
    // Past its start lines, the node writes JSON lines only, as on Bun. Before, Deno's own plain-text notice about
    // request.signal's legacy abort came after the first answer (`--unstable-no-legacy-abort` in start:deno).
    const stray = server
      .output()
      .split("\n")
      .filter((line) => line !== "" && !/^(\{|\[edgewise\] | {2}curl )/.test(line));
    expect(stray).toEqual([]);
    // As on Bun, the line after the address says where the queue is (before, Deno printed none).
    expect(server.output()).toMatch(/^\[edgewise\] queue: embedded broker at http:\/\/127\.0\.0\.1:\d+$/m);
    // As on Bun, a newcomer gets commands that work as printed, not only a token.
    expect(server.output()).toContain(`curl -X PUT '${base}/v1/inventory/demo-widget'`);
    expect(server.output()).toContain(`${base}/_console?token=${server.match}`);
    const names = () =>
      new Set(
        exports
          .flatMap((e) => e.resourceMetrics.flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics)))
          .map((m) => m.name),
      );
    const deadline = Date.now() + 5_000;
    while (!names().has("http.server.request.duration") && Date.now() < deadline) await Bun.sleep(50);
    expect(names().has("http.server.request.duration")).toBe(true);
  } finally {
    await server.kill("SIGTERM");
    collector.stop(true);
  }
}, 90_000);

test("on Deno, REDIS_URL: the rate limit counts in the real Redis over TCP, and /readyz checks it", async () => {
  const jwtSecret = crypto.randomUUID() + crypto.randomUUID();
  // A subject of its own, so that no other run's count in the shared Redis shows in this one's.
  const sub = `deno-redis-${crypto.randomUUID()}`;
  const token = await new SignJWT({ sub, scope: "admin" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(jwtSecret));
  const { server, base } = await startDenoNode(
    { JWT_SECRET: jwtSecret, REDIS_URL: "redis://127.0.0.1:6379" },
    /listening on (\S+)/,
  );
  const redis = new RedisClient("redis://127.0.0.1:6379");
  try {
    await gatewaySmoke(base, token);
    const ready = (await (await fetch(`${base}/readyz`)).json()) as {
      dependencies: Record<string, { ok: boolean }>;
    };
    expect(ready.dependencies.redis?.ok).toBe(true);
    // Before, Deno ignored REDIS_URL and counted in its own memory: no key of this subject in Redis.
    const keys = (await redis.send("KEYS", [`edgewise:rl*${sub}*`])) as string[];
    expect(keys.length).toBeGreaterThan(0);
    await redis.send("DEL", keys);
  } finally {
    redis.close();
    await server.kill("SIGTERM");
  }
}, 90_000);

test("on Deno, an address it cannot listen on stops the start with exit 1 and one line naming HOST, as on Bun", async () => {
  // 192.0.2.1 (TEST-NET-1) is no address of this machine; a name that does not resolve cannot be listened on either.
  // A data dir no node ran on (what a node left may be warned of first), one for both: each start sets up PGlite
  // before it listens, which the second does not do again.
  const hostDataDir = mkdtempSync(join(tmpdir(), "edgewise-deno-host-"));
  for (const host of ["192.0.2.1", "nosuch.invalid"]) {
    const child = Bun.spawn(denoEntryCommand(root), {
      cwd: root,
      env: {
        ...process.env,
        HOST: host,
        PORT: "0",
        EDGEWISE_DATA_DIR: hostDataDir,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const code = await child.exited;
    const stderr = await new Response(child.stderr).text();
    // Before: Deno's bare "Cannot assign requested address (os error 99)" (or a failed name lookup), no variable.
    expect({ host, code, line: stderr.trim().split("\n")[0] }).toEqual({
      host,
      code: 1,
      line: expect.stringMatching(
        new RegExp(
          `^\\[edgewise\\] could not start: cannot listen on ${host.replaceAll(".", "\\.")}:0 \\(.+\\): .+\\. Check HOST \\(an address of this machine, or 0\\.0\\.0\\.0\\) and PORT$`,
        ),
      ),
    });
  }
  rmSync(hostDataDir, { recursive: true, force: true });
}, 60_000);

test("on Deno, a request that arrives while the node stops gets a 503 with a request id, as from the app", async () => {
  const { server, base } = await startDenoNode({}, /listening on (\S+)/);
  let upload: ReturnType<typeof connect> | undefined;
  try {
    // A chunked upload that never ends keeps a request under way, so the stop waits (up to 10 s) for it, and a
    // request that arrives meanwhile is answered by the server itself, not by the app.
    const { hostname, port } = new URL(base);
    const open = connect({ host: hostname, port: Number(port) });
    upload = open;
    await new Promise<void>((resolve, reject) => {
      open.once("connect", () => resolve());
      open.once("error", reject);
    });
    open.on("error", () => {});
    let answered = "";
    open.on("data", (chunk: Buffer) => {
      answered += chunk.toString("latin1");
    });
    // The stop comes once the server has the request: Deno.serve answers its `Expect: 100-continue` only then. A
    // fixed 200 ms could pass on a loaded machine before Deno had read the head, and the stop then waited for nothing.
    open.write(
      `POST /v1/counters/stop/increment HTTP/1.1\r\nHost: ${hostname}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nexpect: 100-continue\r\n\r\n`,
    );
    const taken = Date.now() + 10_000;
    while (!answered.includes(" 100 Continue\r\n") && Date.now() < taken) await Bun.sleep(10);
    expect(answered).toStartWith("HTTP/1.1 100 Continue\r\n");
    open.write(`4\r\n{"by`);
    process.kill(-server.child.pid, "SIGTERM");

    let refused: Response | undefined;
    const until = Date.now() + 8_000;
    while (!refused && Date.now() < until) {
      const response = await fetch(`${base}/v1/orders/a%2Fb`, { headers: { "x-request-id": "probe-42" } });
      if (response.status === 503) refused = response;
      else await response.body?.cancel();
    }
    if (!refused) throw new Error("no 503 while the Deno node was stopping");
    // Before: no X-Request-Id, no instance.
    expect(refused.headers.get("x-request-id")).toBe("probe-42");
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(refused.headers.get("x-content-type-options")).toBe("nosniff");
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toMatchObject({
      status: 503,
      code: "unavailable",
      instance: "/v1/orders/a%2Fb",
    });
    // Without one of its own (or with one not fit for logs), the caller gets a new id, as from the app.
    const unnamed = await fetch(`${base}/healthz`, { headers: { "x-request-id": "not ok" } });
    expect(unnamed.status).toBe(503);
    expect(unnamed.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._~-]{8,}$/);
    await unnamed.body?.cancel();
  } finally {
    upload?.destroy();
    await server.kill("SIGKILL");
  }
}, 90_000);
