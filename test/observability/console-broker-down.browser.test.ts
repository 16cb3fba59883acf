// The console when its broker cannot be reached, in headless Chromium against a commerce node on Bun whose queue is
// a broker of its own behind a TCP fault proxy: the dead-letter list says the queue is unreachable (not "empty"),
// and replay, delete and purge answer a console page (a browser) or problem+json `unavailable` (any other client),
// 503 either way, with nothing logged as an internal bug.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import type { Broker } from "../../deploy/local/broker/index.ts";
import { launchChromium } from "../support/chromium.ts";
import { dropSchema, startReceiver, startTestBroker, uniqueSchema } from "../broker/helpers.ts";
import { type FaultProxy, Modes, startFaultProxy } from "../chaos/fault-proxy.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, uniqueName } from "../commerce/client.ts";

const artifacts = resolve(import.meta.dir, "../artifacts/console");
const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

const brokerSchema = uniqueSchema("console_broker_down");
let broker: Broker;
let proxy: FaultProxy;
let running: CommerceNode;
let browser: Browser;
const logs: string[] = [];
const receiver = startReceiver(() => new Response("broken", { status: 500 }));

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  broker = await startTestBroker(brokerSchema);
  proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: broker.port } });
  [running, browser] = await Promise.all([
    startCommerceNode(
      "console_broker_down",
      {
        QSTASH_URL: `http://${proxy.address}`,
        QSTASH_TOKEN: broker.token,
        QSTASH_CURRENT_SIGNING_KEY: broker.currentSigningKey,
        QSTASH_NEXT_SIGNING_KEY: broker.nextSigningKey,
        // No retries: a failed webhook delivery is dead-lettered at once.
        EDGEWISE_DELIVERY_RETRIES: "0",
      },
      { log: (line) => logs.push(line) },
    ),
    launchChromium(),
  ]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await running?.stop();
  await proxy?.close();
  await broker?.stop();
  await dropSchema(brokerSchema);
  receiver.stop();
});

async function deadLetters(): Promise<Array<{ dlqId: string; url: string }>> {
  const response = await fetch(`${broker.url}/v2/dlq`, {
    headers: { authorization: `Bearer ${broker.token}` },
  });
  return ((await response.json()) as { messages: Array<{ dlqId: string; url: string }> }).messages;
}

/** A webhook whose receiver answers 500: its delivery of a confirmed order is dead-lettered. */
async function deadLetter(): Promise<{ dlqId: string; url: string }> {
  const api = running.client;
  const hook = expectOk(
    await api.call<{ id: string }>("POST", "/v1/webhooks/subscriptions", {
      body: { url: receiver.url("/down-hook"), events: ["order.confirmed"] },
    }),
  );
  const [sku, customer] = [uniqueName("down-sku"), uniqueName("down-cust")];
  await api.putSku(sku, 5, 400);
  await api.putAccount(customer, 10_000);
  const placed = await api.place(customer, [{ sku, quantity: 1 }]);
  await api.settle(placed.body.orderId);
  let found: { dlqId: string; url: string } | undefined;
  await eventually(async () => {
    found = (await deadLetters()).find((d) => d.url.endsWith(`/webhooks/${hook.id}`));
    return found !== undefined;
  }, "the dead letter");
  return found as { dlqId: string; url: string };
}

/** Lines the node logged at error: a 500, or any failure reported as a bug. */
const errorLines = () => logs.filter((line) => /"level":"error"/.test(line));

describe("the console with its broker unreachable", () => {
  test("in Chromium: the queue section says so, and Replay, Delete and Purge answer a 503 page; nothing changed", async () => {
    const letter = await deadLetter();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // Purge asks first (window.confirm): the operator says yes.
      page.on("dialog", (dialog) => void dialog.accept());
      const admin = await running.client.token();
      await page.goto(`${running.node.url}/_console?token=${encodeURIComponent(admin)}`);
      const logged = errorLines().length;
      // Each page loaded while the broker answered; it is gone by the time the button is clicked.
      for (const button of ["button.replay", "button.delete", "button.purge"]) {
        proxy.setMode(Modes.pass);
        expect((await page.goto(`${running.node.url}/_console`))?.status()).toBe(200);
        expect(await page.locator(`#dlq-table tr[data-dlq-id="${letter.dlqId}"]`).count()).toBe(1);
        proxy.setMode(Modes.reset);
        const [answer] = await Promise.all([
          page.waitForResponse((response) => response.request().method() === "POST"),
          page.locator(`#dlq-table ${button}, form.purge ${button}`).first().click(),
        ]);
        expect(answer.status()).toBe(503);
        expect(answer.headers()["content-type"]).toContain("text/html");
        expect(await page.locator("h1").textContent()).toBe("Broker unreachable");
        const text = (await page.locator("main").textContent()) ?? "";
        expect(text).toContain("could not be reached");
        expect(text).toMatch(/nothing was changed/i);
        // The console's own page: its layout and styles, a way back.
        expect(await page.locator("header a.brand").count()).toBe(1);
      }
      await shot(page, "broker-unreachable-form");

      // The overview still renders; the queue section says the broker is unreachable instead of "empty".
      const overview = await page.goto(`${running.node.url}/_console`);
      expect(overview?.status()).toBe(200);
      const queues = (await page.locator("#queues").textContent()) ?? "";
      expect(queues).toContain("unreachable");
      expect(queues).not.toContain("the dead-letter queue is empty");
      expect(await page.locator("#dlq-table").count()).toBe(0);
      expect(await page.locator("#topology-diagram").count()).toBe(1);
      await shot(page, "broker-unreachable-overview");
      expect(errorLines().slice(logged)).toEqual([]);

      // The broker back: the dead letter is still there, as it was.
      proxy.setMode(Modes.pass);
      await page.reload();
      expect(await page.locator(`#dlq-table tr[data-dlq-id="${letter.dlqId}"]`).count()).toBe(1);
    } finally {
      proxy.setMode(Modes.pass);
      await context.close();
    }
  }, 60_000);

  test("any other client: problem+json 503 `unavailable` from each form, nothing logged as a bug", async () => {
    const letter = (await deadLetters())[0] ?? (await deadLetter());
    const admin = { authorization: `Bearer ${await running.client.token()}` };
    proxy.setMode(Modes.reset);
    const logged = errorLines().length;
    try {
      for (const path of [
        `/_console/dlq/${encodeURIComponent(letter.dlqId)}/retry`,
        `/_console/dlq/${encodeURIComponent(letter.dlqId)}/delete`,
        "/_console/dlq/purge",
      ]) {
        const answer = await fetch(`${running.node.url}${path}`, {
          method: "POST",
          headers: admin,
          redirect: "manual",
        });
        expect(answer.status).toBe(503);
        expect(answer.headers.get("content-type")).toBe("application/problem+json");
        const problem = (await answer.json()) as { code: string; detail: string };
        expect(problem.code).toBe("unavailable");
        // Once the failures above open the node's broker breaker, the console does not call the broker at all.
        expect(problem.detail).toMatch(/could not be reached|circuit breaker is open/);
        expect(problem.detail).toContain("nothing was changed");
      }
      expect(errorLines().slice(logged)).toEqual([]);
    } finally {
      proxy.setMode(Modes.pass);
    }
    expect((await deadLetters()).some((d) => d.dlqId === letter.dlqId)).toBe(true);
  }, 60_000);

  test("once the node's broker breaker is open, a form answers 503 at once instead of waiting out its timeout", async () => {
    const letter = (await deadLetters())[0] ?? (await deadLetter());
    const admin = { authorization: `Bearer ${await running.client.token()}` };
    const retry = () =>
      fetch(`${running.node.url}/_console/dlq/${encodeURIComponent(letter.dlqId)}/retry`, {
        method: "POST",
        headers: admin,
        redirect: "manual",
      });
    // From a closed breaker (the failures above may have opened it): the overview reads the queue again.
    await eventually(
      async () =>
        (await (await fetch(`${running.node.url}/_console`, { headers: admin })).text()).includes(
          'id="dlq-table"',
        ),
      "the console to read the broker again",
    );
    // The broker hangs: each call waits for the broker policy's 5 s timeout, and five failures open the breaker.
    proxy.setMode(Modes.blackhole);
    const logged = errorLines().length;
    try {
      const first = await Promise.all(Array.from({ length: 5 }, retry));
      expect(first.map((answer) => answer.status)).toEqual([503, 503, 503, 503, 503]);
      const started = performance.now();
      const answer = await retry();
      const tookMs = performance.now() - started;
      expect(answer.status).toBe(503);
      const problem = (await answer.json()) as { code: string; detail: string };
      expect(problem.code).toBe("unavailable");
      expect(problem.detail).toContain("circuit breaker is open");
      // Well under the 5 s the call would otherwise wait (generous: CI is a loaded two-core machine).
      expect(tookMs).toBeLessThan(2_500);
      expect(errorLines().slice(logged)).toEqual([]);
    } finally {
      proxy.setMode(Modes.pass);
    }
  }, 60_000);
});
