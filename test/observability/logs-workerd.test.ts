// Workers write the node's JSON lines beyond the gateway: a Durable Object's and the config guard's, under wrangler dev.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpDriver } from "../conformance/http-driver.ts";
import { startProcess } from "../e2e/process.ts";
import { freePort, wranglerDev, wranglerEnv, wranglerRecords as records } from "../support/wrangler.ts";

const root = join(import.meta.dir, "../..");

/**
 * wrangler relays workerd's lines a while after they are written: wait for one that matches, whole. Its output comes
 * in chunks, stdout's and stderr's interleaved, so a line can be there half-written: it is taken once it parses.
 */
async function waitForLine(
  output: () => string,
  match: (line: string) => boolean,
  what: string,
): Promise<string> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await Bun.sleep(100)) {
    const found = output()
      .split("\n")
      .find((line) => match(line) && records(line).length === 1);
    if (found !== undefined) return found.trim();
  }
  throw new Error(`no ${what} in the Worker's output:\n${output().slice(-3_000)}`);
}

/** The messaging test Worker under wrangler dev, its queue a port nobody listens on, with `vars` on top. */
async function startWorker(vars: Record<string, string>) {
  const persistTo = mkdtempSync(join(tmpdir(), "edgewise-logs-workerd-"));
  const port = freePort();
  const worker = await HttpDriver.start({
    name: "workerd",
    cwd: root,
    command: () =>
      wranglerDev({
        config: "test/messaging/cloudflare/wrangler.toml",
        port,
        persistTo,
        vars: {
          QSTASH_URL: `http://127.0.0.1:${freePort()}`,
          QSTASH_TOKEN: `qstash-token-${crypto.randomUUID()}`,
          PUBLIC_URL: `http://127.0.0.1:${port}`,
          ...vars,
        },
      }),
    readyPattern: /Ready on https?:\/\/[\w.]+:(\d+)/,
    processGroup: true,
    env: wranglerEnv,
    startTimeoutMs: 25_000,
  });
  return { worker, persistTo };
}

test("a Durable Object's failed relay is one JSON warn line: the node's fields, message ids, no token", async () => {
  // A broker that is not there: the counter's relay fails and its Durable Object reports it.
  const token = `qstash-token-${crypto.randomUUID()}`;
  const { worker, persistTo } = await startWorker({ QSTASH_TOKEN: token });
  try {
    const outcome = await worker.ask("counter", "logs-producer", "SendTo", { key: "logs-target", count: 1 });
    expect(outcome.ok).toBe(true);
    const ids = (outcome.ok ? (outcome.reply as { ids: string[] }).ids : []) as string[];
    const line = await waitForLine(
      () => worker.log,
      (text) => text.includes("messages will be retried"),
      "relay line",
    );
    const record = records(line)[0];
    expect(Object.keys(record ?? {}).slice(0, 3)).toEqual(["time", "level", "msg"]);
    expect(record).toMatchObject({
      level: "warn",
      msg: "relay: 1 messages will be retried",
      component: "durable-object",
      message_ids: ids,
      message_count: 1,
      error: { message: expect.any(String) },
    });
    expect(worker.log).not.toContain(token);
    expect(worker.log).not.toContain("[edgewise] relay");
  } finally {
    await worker.close();
    rmSync(persistTo, { recursive: true, force: true });
  }
}, 90_000);

test("a Durable Object honours LOG_LEVEL: at error, a failed turn is written and a retried relay is not", async () => {
  const { worker, persistTo } = await startWorker({ LOG_LEVEL: "error" });
  try {
    const sent = await worker.ask("counter", "quiet-producer", "SendTo", { key: "quiet-target", count: 1 });
    expect(sent.ok).toBe(true);
    await Bun.sleep(1_000); // the relay pass after the commit fails (a warning, below LOG_LEVEL)
    const failed = await worker.ask("counter", "quiet-failing", "FailAfterEffects", {});
    expect(failed.ok).toBe(false);
    // Lines reach wrangler's output in the order written: once the turn's error line is there, so is any earlier one.
    const line = await waitForLine(
      () => worker.log,
      (text) => text.includes("turn failed"),
      "turn failed line",
    );
    expect(records(line)[0]).toMatchObject({
      level: "error",
      msg: "counter turn failed: actor.handler_failed",
      component: "durable-object",
      actor: "counter/quiet-failing",
    });
    expect(worker.log).not.toContain("messages will be retried");
  } finally {
    await worker.close();
    rmSync(persistTo, { recursive: true, force: true });
  }
}, 90_000);

test("the config guard's line is one JSON error line naming the variable, never its value", async () => {
  const persistTo = mkdtempSync(join(tmpdir(), "edgewise-logs-workerd-"));
  const secret = "short-secret-value";
  const server = await startProcess(
    wranglerDev({ persistTo, vars: { JWT_SECRET: secret, LOG_LEVEL: "error" } }),
    {
      cwd: root,
      env: wranglerEnv,
      pattern: /Ready on (https?:\/\/[\w.]+:\d+)/,
      again: () => ({
        command: wranglerDev({ persistTo, vars: { JWT_SECRET: secret, LOG_LEVEL: "error" } }),
      }),
    },
  );
  try {
    expect((await fetch(`${server.match}/healthz`)).status).toBe(500);
    const line = await waitForLine(
      server.output,
      (text) => text.includes("configuration is invalid"),
      "guard line",
    );
    const record = records(line)[0];
    expect(Object.keys(record ?? {}).slice(0, 3)).toEqual(["time", "level", "msg"]);
    expect(record).toMatchObject({
      level: "error",
      msg: "the Worker's configuration is invalid; requests get 500 until it is fixed",
      error: { code: "config.invalid", message: expect.stringContaining("JWT_SECRET") },
    });
    expect(server.output()).not.toContain(secret);
  } finally {
    await server.kill();
    rmSync(persistTo, { recursive: true, force: true });
  }
}, 90_000);
