// Crash: SIGKILL the broker process mid-stream, restart it, and every accepted message still arrives.
import { afterAll, describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { Client } from "@upstash/qstash";
import { DEV_TOKEN } from "../../deploy/local/broker/index.ts";
import { dropSchema, startReceiver, TEST_DATABASE_URL, uniqueSchema, waitFor } from "./helpers.ts";

const root = resolve(import.meta.dir, "../..");
const schema = uniqueSchema("crash");
const port = 21_000 + Math.floor(Math.random() * 9_000);
const baseUrl = `http://127.0.0.1:${port}`;
const TOTAL = 200;

let killAfter = 60;
let onKillPoint: (() => void) | undefined;
let openGate: () => void = () => {};
const published = new Promise<void>((resolveGate) => {
  openGate = resolveGate;
});
const destination = startReceiver(async () => {
  await published; // nothing is acknowledged before every message has been accepted
  if (killAfter > 0 && destination.deliveries.length >= killAfter) onKillPoint?.();
  await Bun.sleep(15); // a slow consumer, so that deliveries are under way when the broker dies
  return new Response("ok");
});

const children: Bun.Subprocess[] = [];

async function startProcess() {
  const child = Bun.spawn([process.execPath, join(root, "deploy/local/broker/main.ts")], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: TEST_DATABASE_URL,
      QSTASH_DB_SCHEMA: schema,
      QSTASH_PORT: String(port),
      QSTASH_TIME_SCALE: "0.001",
      QSTASH_DELIVERY_CONCURRENCY: "8",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(child);
  const output = new Response(child.stdout).text();
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`${baseUrl}/v2/keys`, { headers: { authorization: `Bearer ${DEV_TOKEN}` } });
      if (res.ok) return { child, output };
    } catch {
      // not up yet
    }
    await Bun.sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error(`broker did not start: ${await new Response(child.stderr).text()}`);
}

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  destination.stop();
  await dropSchema(schema);
});

describe("crash recovery", () => {
  test(`SIGKILL mid-stream of ${TOTAL} messages: all delivered at least once after a restart`, async () => {
    const first = await startProcess();
    const client = new Client({ baseUrl, token: DEV_TOKEN, retry: false });
    const killed = new Promise<void>((resolveKill) => {
      onKillPoint = () => {
        onKillPoint = undefined;
        first.child.kill("SIGKILL");
        resolveKill();
      };
    });
    const accepted: string[] = [];
    const batches = [];
    for (let i = 0; i < TOTAL; i += 50) {
      batches.push(
        Array.from({ length: 50 }, (_, j) => ({
          url: destination.url("/crash"),
          body: JSON.stringify({ n: i + j }),
        })),
      );
    }
    for (const batch of batches) {
      const results = await client.batch(batch);
      for (const result of results) accepted.push((result as { messageId: string }).messageId);
    }
    expect(accepted).toHaveLength(TOTAL);
    openGate();
    await killed;
    await first.child.exited;
    const beforeRestart = new Set(destination.deliveries.map((d) => d.messageId)).size;
    expect(beforeRestart).toBeLessThan(TOTAL);
    killAfter = -1;

    const second = await startProcess();
    try {
      await waitFor(
        () => new Set(destination.deliveries.map((d) => d.messageId)).size >= TOTAL,
        20_000,
        `${TOTAL} unique message ids`,
      );
      const unique = new Set(destination.deliveries.map((d) => d.messageId));
      expect([...unique].sort()).toEqual([...accepted].sort());
      // Attempts under way at the kill were sent again, marked as retried.
      expect(destination.deliveries.length).toBeGreaterThan(TOTAL);
      expect(destination.deliveries.some((d) => d.retried > 0)).toBe(true);
    } finally {
      second.child.kill("SIGTERM");
      await second.child.exited;
    }
    expect(await second.output).toContain("Recovered");
  }, 40_000);
});
