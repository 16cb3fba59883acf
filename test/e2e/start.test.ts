// `npm start` on embedded defaults, as a newcomer runs it: the printed token works, data survives a SIGKILL.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { restartablePort } from "../support/ports.ts";
import { freePort } from "../support/wrangler.ts";
import { startProcess } from "./process.ts";

const root = resolve(import.meta.dir, "../..");

/** Starts the Bun entry and reads its stdout until it prints the admin token. */
async function start(dataDir: string, port: number) {
  const child = Bun.spawn([process.execPath, join(root, "edge/entries/bun.ts")], {
    cwd: root,
    env: { ...process.env, EDGEWISE_DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let printed = "";
  const deadline = Date.now() + 45_000;
  // The "more:" line is printed last; the token and the try-it lines may arrive in different chunks.
  while (!/\[edgewise\] more: .*\n/.test(printed) && Date.now() < deadline) {
    const { done, value } = await reader.read();
    if (done) break;
    printed += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  const token = /admin token[^:]*: (\S+)/.exec(printed)?.[1];
  if (!token) {
    child.kill("SIGKILL");
    throw new Error(`no admin token printed:\n${printed}\n${await new Response(child.stderr).text()}`);
  }
  return { child, token, printed };
}

describe("npm start", () => {
  // The first case's data dir, taken on by the second once its nodes have exited: a fresh one cost that start its
  // embedded PGlite's first setup, most of a start, and what the second checks does not need one.
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-start-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  test("prints a working admin token and curl line; state and the key survive a SIGKILL and restart", async () => {
    // Restarted on it after the SIGKILL: a port outside the ephemeral range, which no outgoing connection takes meanwhile.
    const port = restartablePort();
    const base = `http://127.0.0.1:${port}`;
    const first = await start(dataDir, port);
    expect(first.printed).toContain(
      `[edgewise] listening on ${base} (this machine only; data in ${dataDir})`,
    );
    expect(first.printed).toContain(`curl -X POST '${base}/v1/counters/demo/increment'`);
    // The printed console link logs in once: the token moves into a cookie and out of the address bar.
    const consoleLink = /console \([^)]*\): (\S+)/.exec(first.printed)?.[1];
    expect(consoleLink).toBe(`${base}/_console?token=${first.token}`);
    const login = await fetch(consoleLink as string, { redirect: "manual" });
    expect(login.status).toBeGreaterThanOrEqual(300);
    expect(login.status).toBeLessThan(400);
    expect(login.headers.get("location")).not.toContain(first.token);
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    expect(cookie).not.toBe("");
    const page = await fetch(`${base}/_console`, { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Live events");
    // The printed commands work as printed: stock, fund, place an order; the order then confirms.
    const commands = first.printed.split("\n").filter((line) => line.startsWith("  curl "));
    expect(commands.length).toBe(4);
    let placed = "";
    for (const command of commands.slice(0, 3)) {
      const run = Bun.spawnSync(["sh", "-c", `${command.trim()} -sS -w '\\n%{http_code}'`]);
      const [body, status] = run.stdout.toString().trim().split("\n");
      expect({ command: command.slice(0, 60), status: Number(status) }).toEqual({
        command: command.slice(0, 60),
        status: command.includes("/v1/orders") ? 202 : 200,
      });
      placed = body ?? "";
    }
    const { orderId } = JSON.parse(placed) as { orderId: string };
    const deadlineForOrder = Date.now() + 20_000;
    let status = "pending";
    while (status === "pending" && Date.now() < deadlineForOrder) {
      const read = await fetch(`${base}/v1/orders/${orderId}`, {
        headers: { authorization: `Bearer ${first.token}` },
      });
      status = ((await read.json()) as { status: string }).status;
      if (status === "pending") await Bun.sleep(50);
    }
    expect(status).toBe("confirmed");
    const inc = (token?: string) =>
      fetch(`${base}/v1/counters/e2e/increment`, {
        method: "POST",
        body: '{"by":3}',
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = (await (await fetch(`${base}/readyz`)).json()) as {
      dependencies: Record<string, { ok: boolean }>;
    };
    expect(ready.dependencies.postgres?.ok).toBe(true);
    expect(ready.dependencies.broker?.ok).toBe(true);
    // A second node on the same data dir would run a second Postgres on its files and the same actors twice:
    // it stops at once and says who holds the dir; so does a standalone broker on it. The first goes on serving.
    const refused = (command: string[], env: Record<string, string>) => {
      const run = Bun.spawnSync(command, {
        cwd: root,
        env: { ...process.env, EDGEWISE_DATA_DIR: dataDir, HOST: "127.0.0.1", ...env },
        timeout: 30_000,
      });
      return { code: run.exitCode, stderr: run.stderr.toString() };
    };
    const secondNode = refused([process.execPath, join(root, "edge/entries/bun.ts")], { PORT: "0" });
    expect(secondNode.code).toBe(1);
    expect(secondNode.stderr).toContain(
      `[edgewise] could not start: config.invalid: data dir ${dataDir} is in use: another process (pid ${first.child.pid}`,
    );
    const broker = refused([process.execPath, join(root, "deploy/local/broker/main.ts")], {
      QSTASH_PORT: "0",
    });
    expect(broker.code).not.toBe(0);
    expect(broker.stderr).toContain(`data dir ${dataDir} is in use`);
    expect((await inc()).status).toBe(401);
    const counted = await inc(first.token);
    expect(counted.headers.get("ratelimit-limit")).toBe("600");
    expect(await counted.json()).toEqual({ count: 3 });
    first.child.kill("SIGKILL");
    await first.child.exited;

    const second = await start(dataDir, port);
    try {
      // The JWT key lives in the data dir: the first run's token still works.
      expect(await (await inc(first.token)).json()).toEqual({ count: 6 });
    } finally {
      second.child.kill("SIGTERM");
      await second.child.exited;
    }
  }, 120_000);

  test("a SIGTERM to `npm start` (what a supervisor or `docker stop` sends to it) drains the node, then npm exits", async () => {
    const port = freePort();
    // Its own process group: the cleanup below kills the whole group, a node left orphaned (the bug) included.
    const npm = await startProcess(["npm", "start"], {
      cwd: root,
      env: { EDGEWISE_DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1" },
      pattern: /\[edgewise\] listening on/,
      timeoutMs: 45_000,
    });
    const answers = () =>
      fetch(`http://127.0.0.1:${port}/healthz`).then(
        (response) => response.ok,
        () => false,
      );
    try {
      expect(await answers()).toBe(true);
      npm.child.kill("SIGTERM"); // to npm alone, as a supervisor signals the process it started
      const code = await Promise.race([npm.child.exited, Bun.sleep(40_000).then(() => "npm still running")]);
      // npm exits with the node's own code, once the node has drained; before, npm died at once and left the node
      // serving, orphaned, on the port and the data dir: the drain never ran and a restart found the dir in use.
      expect(code).toBe(0);
      expect(npm.output()).toContain("[edgewise] SIGTERM: draining and closing");
      expect(npm.output()).toMatch(/\[edgewise\] stopped in \d+ ms/);
      expect(await answers()).toBe(false);
    } finally {
      await npm.kill();
    }
  }, 90_000);

  test("refuses bad configuration with exit code 78 and names the variable", async () => {
    const child = Bun.spawn([process.execPath, join(root, "edge/entries/bun.ts")], {
      cwd: root,
      env: { ...process.env, PORT: "eighty" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await child.exited).toBe(78);
    expect(await new Response(child.stderr).text()).toContain("PORT must be a whole number");
  });

  test("a list the node parses as it starts (trusted proxies, inbound secrets) refuses a bad entry with 78 too", async () => {
    for (const [name, value] of [
      ["TRUSTED_PROXIES", "10.0.0.0/8,banana"],
      ["INBOUND_WEBHOOK_SECRETS", "supplier=not-a-secret"],
    ] as const) {
      const child = Bun.spawn([process.execPath, join(root, "edge/entries/bun.ts")], {
        cwd: root,
        env: {
          ...process.env,
          PORT: "0",
          HOST: "127.0.0.1",
          EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-start-")),
          [name]: value,
        },
        stdout: "pipe",
        stderr: "pipe",
      });
      // 1 before, the code of a node that cannot start with a valid configuration (README: a bad value is 78).
      expect({ name, code: await child.exited }).toEqual({ name, code: 78 });
      const stderr = await new Response(child.stderr).text();
      expect(stderr).toContain(`[edgewise] could not start: config.invalid: ${name}`);
      expect(stderr).not.toContain("not-a-secret");
    }
  }, 60_000);

  test("a setting read as the node starts (trace sampling) refuses a bad value with exit code 78 too", async () => {
    const child = Bun.spawn([process.execPath, join(root, "edge/entries/bun.ts")], {
      cwd: root,
      env: {
        ...process.env,
        PORT: "0",
        EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-start-")),
        EDGEWISE_TRACE_SAMPLE_READS: "often",
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await child.exited).toBe(78);
    expect(await new Response(child.stderr).text()).toContain("EDGEWISE_TRACE_SAMPLE_READS");
  });

  test("a database it cannot use stops it with exit code 1 and one line that says what to check", async () => {
    const unused = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const closedPort = unused.port;
    unused.stop(true);
    const cases: Array<[string, string]> = [
      [
        `postgres://postgres:not-a-real-secret@127.0.0.1:${closedPort}/test`,
        `cannot reach Postgres at 127.0.0.1:${closedPort} (ECONNREFUSED): is it running? Check DATABASE_URL`,
      ],
      [
        "postgres://postgres@127.0.0.1:5432/test?sslmode=require",
        "TLS to Postgres at 127.0.0.1:5432 failed: server does not support SSL, but sslmode=require requires it",
      ],
    ];
    /** Starts the real entry with this DATABASE_URL, and returns its exit code and what it printed on stderr. */
    const start = async (databaseUrl: string, env: Record<string, string> = {}) => {
      const child = Bun.spawn([process.execPath, join(root, "edge/entries/bun.ts")], {
        cwd: root,
        env: {
          ...process.env,
          DATABASE_URL: databaseUrl,
          EDGEWISE_DATA_DIR: mkdtempSync(join(tmpdir(), "edgewise-start-fail-")),
          PORT: "0",
          HOST: "127.0.0.1",
          ...env,
        },
        stdout: "pipe",
        stderr: "pipe",
      });
      return { code: await child.exited, stderr: await new Response(child.stderr).text() };
    };
    for (const [databaseUrl, line] of cases) {
      const { code, stderr } = await start(databaseUrl);
      expect(code).toBe(1);
      expect(stderr).toContain(`[edgewise] could not start: ${line}`);
      expect(stderr).not.toContain("not-a-real-secret");
      expect(stderr).not.toMatch(/^\s+at /m); // no stack trace unless LOG_LEVEL=debug
    }
    // With LOG_LEVEL=debug the stack follows, still without the password.
    const { code, stderr } = await start(`postgres://edge:not-a-real-secret@127.0.0.1:${closedPort}/db`, {
      LOG_LEVEL: "debug",
    });
    expect(code).toBe(1);
    expect(stderr).toContain("[edgewise] could not start:");
    expect(stderr).toMatch(/^\s+at /m);
    expect(stderr).not.toContain("not-a-real-secret");
    // A URL that does not parse (here its port) is a setting to fix: exit 78, named, not quoted.
    const unparsable = await start("postgres://edge:not-a-real-secret@127.0.0.1:99999/db");
    expect(unparsable.code).toBe(78);
    expect(unparsable.stderr).toContain("DATABASE_URL is not a valid URL");
    expect(unparsable.stderr).not.toContain("not-a-real-secret");
  }, 60_000);
});
