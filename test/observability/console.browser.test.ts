// The operator console in headless Chromium (Debian's, driven by playwright-core) against a commerce node on Bun:
// topology, breakers, events and the inspector render; an event appended after the page loaded arrives on its live
// stream (Server-Sent Events) without a reload; a dead letter replayed from the page is delivered.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "../support/chromium.ts";
import { startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, uniqueName } from "../commerce/client.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { sampleWrites, writeSampling } from "../../shared/telemetry/trace/sampling.ts";

const artifacts = resolve(import.meta.dir, "../artifacts/console");

let running: CommerceNode;
let browser: Browser;
const screenshots: string[] = [];

/**
 * The order's trace must be recorded for the traces section to list it. Writes that start a trace are sampled at
 * 10 a second per process by default, a budget every node of this test process shares: record every write here.
 */
let writesBefore: ReturnType<typeof writeSampling>;

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  [running, browser] = await Promise.all([
    // No retries: a failed webhook delivery is dead-lettered at once.
    startCommerceNode("console_browser", { EDGEWISE_DELIVERY_RETRIES: "0" }),
    launchChromium(),
  ]);
  // After the node started: the first node of a process installs the policy from the environment.
  writesBefore = writeSampling();
  sampleWrites(undefined);
}, 60_000);
afterAll(async () => {
  sampleWrites(writesBefore);
  await Promise.all([browser?.close(), running?.stop()]);
  for (const path of screenshots) console.log(`console screenshot: ${path}`);
});

async function shot(page: Page, name: string) {
  const path = join(artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  screenshots.push(path);
}

async function confirmedOrder() {
  const api = running.client;
  const [sku, customer] = [uniqueName("console-sku"), uniqueName("console-cust")];
  await api.putSku(sku, 5, 400);
  await api.putAccount(customer, 10_000);
  const placed = await api.place(customer, [{ sku, quantity: 1 }]);
  return api.settle(placed.body.orderId);
}

async function deadLetters(): Promise<Array<{ dlqId: string; url: string }>> {
  const response = await fetch(`${running.node.brokerUrl}/v2/dlq`, {
    headers: { authorization: `Bearer ${running.node.broker?.token}` },
  });
  return ((await response.json()) as { messages: Array<{ dlqId: string; url: string }> }).messages;
}

/**
 * A message for an actor that refuses it for good (an order takes no `Refund`): the node answers 489 and the broker
 * dead-letters it at once. Published to the broker as the node's relay publishes, to the node's delivery URL.
 */
async function actorDeadLetter(): Promise<{ dlqId: string; key: string }> {
  const key = uniqueName("console-refused");
  const envelope = createEnvelope({
    type: "Refund",
    source: "edgewise://test",
    target: `order/${key}`,
    data: {},
  });
  const published = await fetch(
    `${running.node.brokerUrl}/v2/publish/${running.node.publicUrl}/_edgewise/deliver/order/${key}`,
    {
      method: "POST",
      headers: {
        authorization: `Bearer ${running.node.broker?.token}`,
        "content-type": "application/cloudevents+json",
      },
      body: JSON.stringify(envelope),
    },
  );
  expect(published.status).toBe(201);
  let dlqId = "";
  await eventually(async () => {
    dlqId = (await deadLetters()).find((d) => d.url.endsWith(`/order/${key}`))?.dlqId ?? "";
    return dlqId !== "";
  }, "the refused message's dead letter");
  return { dlqId, key };
}

describe("the console in Chromium", () => {
  test("renders the topology, breakers, live events and an actor; a replayed dead letter is delivered", async () => {
    let status = 500;
    const receiver = startReceiver(() => new Response(status === 200 ? "ok" : "broken", { status }));
    const context = await browser.newContext();
    try {
      const hook = expectOk(
        await running.client.call<{ id: string; secret: string }>("POST", "/v1/webhooks/subscriptions", {
          body: { url: receiver.url("/console-hook"), events: ["order.confirmed"] },
        }),
      );
      const refused = await actorDeadLetter();
      const order = await confirmedOrder();
      await eventually(
        async () => (await deadLetters()).some((d) => d.url.endsWith(`/webhooks/${hook.id}`)),
        "the dead letter",
      );
      const before = receiver.deliveries.length;
      expect(before).toBeGreaterThanOrEqual(1);

      const page = await context.newPage();
      const errors: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(message.text());
      });
      const admin = await running.client.token();
      const opened = await page.goto(`${running.node.url}/_console?token=${encodeURIComponent(admin)}`);
      expect(opened?.status()).toBe(200);
      // The token moved into an HttpOnly, SameSite=Strict cookie and out of the address bar.
      expect(page.url()).toBe(`${running.node.url}/_console`);
      const [cookie] = await context.cookies();
      expect(cookie).toMatchObject({
        name: "edgewise_console",
        httpOnly: true,
        sameSite: "Strict",
        path: "/_console",
      });
      expect(opened?.headers()["content-security-policy"]).toContain("script-src 'self'");

      // The topology: actor types, consumers and the event types they hear, as a diagram.
      const diagram = page.locator("#topology-diagram");
      await expect(diagram.isVisible()).resolves.toBe(true);
      const diagramText = await diagram.textContent();
      for (const name of ["order", "inventory", "loyalty", "readside", "OrderPlaced", "OrderConfirmed"]) {
        expect(diagramText).toContain(name);
      }
      expect(await page.locator("#topology-diagram line.edge").count()).toBeGreaterThan(4);

      // Breakers: the broker's and Postgres's have been used by now.
      const breakers = await page.locator("#breaker-table tbody tr[data-breaker]").allTextContents();
      expect(breakers.join(" ")).toContain("broker");
      expect(breakers.join(" ")).toMatch(/closed/);

      // The events: this order's, rendered by the server; then the live stream (EventSource) is connected.
      await page.waitForFunction(
        (orderId) => document.getElementById("event-rows")?.textContent?.includes(orderId) ?? false,
        order.orderId,
        { timeout: 10_000 },
      );
      await page.waitForSelector('#events-status[data-state="live"]', { timeout: 10_000 });
      await shot(page, "overview");

      // Traces: the order's request as a waterfall, when the node records traces (it does by default).
      const tracing = (running.node as { tracing?: unknown }).tracing !== undefined;
      if (!tracing) {
        expect(await page.locator("#traces").textContent()).toContain("tracing not configured");
      } else {
        // The API's traffic, not the console's own page loads, assets and live stream (they are not recorded).
        await page.reload();
        expect(await page.locator("#trace-table tbody").textContent()).not.toContain("/_console");
        const orderTrace = page.locator("#trace-table tr", { hasText: "POST /v1/orders" }).first();
        expect(await orderTrace.count()).toBe(1);
        await Promise.all([page.waitForURL(/\/_console\/traces\//), orderTrace.locator("a").click()]);
        expect(await page.locator("#waterfall g.span").count()).toBeGreaterThan(1);
        expect(await page.locator("#waterfall").textContent()).toContain("POST /v1/orders");
        await shot(page, "order-waterfall");
        await page.goto(`${running.node.url}/_console`);
      }

      // The dead letter is listed as an operator knows it: the webhook's subscription and its receiver's URL, and
      // the message type; the internal delivery URL is there for debugging, folded away. Never the signing secret.
      const row = page.locator(`#dlq-table tr[data-url$="/webhooks/${hook.id}"]`);
      expect(await row.count()).toBe(1);
      const target = row.locator("td.target");
      const shown = (await target.locator(".what").textContent()) ?? "";
      expect(shown).toContain(receiver.url("/console-hook"));
      expect(shown).toContain(hook.id);
      expect(shown).not.toContain("/_edgewise/deliver/");
      expect(await row.locator("td.message").textContent()).toBe("WebhookDelivery");
      expect(await target.getAttribute("title")).toEndWith(`/_edgewise/deliver/webhooks/${hook.id}`);
      const raw = target.locator("details");
      expect(await raw.getAttribute("open")).toBeNull();
      await raw.locator("summary").click();
      expect(await raw.getAttribute("open")).not.toBeNull();
      expect(await raw.textContent()).toContain(`/_edgewise/deliver/webhooks/${hook.id}`);
      expect(await page.content()).not.toContain(hook.secret);
      // An actor's dead letter: the actor's type and key, and the message type.
      const actorRow = page.locator(`#dlq-table tr[data-dlq-id="${refused.dlqId}"]`);
      const actor = (await actorRow.locator("td.target .what").textContent()) ?? "";
      expect(actor).toContain(`order/${refused.key}`);
      expect(actor).not.toContain("/_edgewise/deliver/");
      expect(await actorRow.locator("td.message").textContent()).toBe("Refund");
      await shot(page, "dead-letter");
      status = 200;
      await Promise.all([page.waitForURL(/notice=replayed/), row.locator("button.replay").click()]);
      expect(await page.locator(".notice-bar").textContent()).toContain("handed back");
      await eventually(() => receiver.deliveries.length > before, "the replayed delivery", 15_000);
      expect(receiver.deliveries.at(-1)?.body).toContain(order.orderId);
      await eventually(
        async () => !(await deadLetters()).some((d) => d.url.endsWith(`/webhooks/${hook.id}`)),
        "the dead letter to go",
      );
      await page.reload();
      expect(await page.locator(`#dlq-table tr[data-url$="/webhooks/${hook.id}"]`).count()).toBe(0);
      await shot(page, "after-replay");
      await page.waitForSelector('#events-status[data-state="live"]', { timeout: 10_000 });

      // Events appended after the page loaded show up on it, at the top, without a reload: this order's (the
      // receiver is healthy again, so its webhook makes no new dead letter), and a refused token's security event.
      await page.evaluate(() => {
        (window as unknown as { notReloaded?: boolean }).notReloaded = true;
      });
      const stamp = await page.locator("#events-updated").textContent();
      const later = await confirmedOrder();
      await page.waitForFunction(
        (orderId) => document.getElementById("event-rows")?.textContent?.includes(orderId) ?? false,
        later.orderId,
        { timeout: 10_000 },
      );
      expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
        true,
      );
      expect(await page.locator("#events-updated").textContent()).not.toBe(stamp);
      const streamed = page.locator("#event-rows tr.fresh", { hasText: later.orderId });
      expect(await streamed.count()).toBeGreaterThan(0);
      // Each cell is text: a streamed row has the four cells of a server-rendered one, and no markup inside.
      expect(await streamed.first().locator("td").count()).toBe(4);
      expect(await streamed.first().locator("td *").count()).toBe(0);
      const forged = await fetch(`${running.node.url}/v1/orders`, {
        headers: { authorization: "Bearer forged" },
      });
      expect(forged.status).toBe(401);
      await page.waitForSelector("#event-rows tr.fresh >> text=security.auth_failed", { timeout: 10_000 });
      expect(await page.locator("#events-status").getAttribute("data-state")).toBe("live");
      await shot(page, "live-event");

      // The inspector: the order actor's state, inbox and outbox.
      await page.selectOption("#inspector select[name=type]", "order");
      await page.fill("#inspector input[name=key]", order.orderId);
      await Promise.all([page.waitForURL(/\/_console\/actors\/order\//), page.click("#inspector button")]);
      expect(await page.locator("#actor-state").textContent()).toContain("confirmed");
      expect(await page.locator("#actor-inbox tr").count()).toBeGreaterThan(0);
      await shot(page, "actor");
      expect(errors).toEqual([]);
      await running.client.call("DELETE", `/v1/webhooks/subscriptions/${hook.id}`);
    } finally {
      await context.close();
      receiver.stop();
    }
  }, 60_000);

  test("no token gets 401 with a sign-in hint, a token without admin gets 403", async () => {
    // Outside a browser the refusal is the API's problem+json; the browser's own navigation gets the page.
    const anonymous = await fetch(`${running.node.url}/_console`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toBe("application/problem+json");
    const reader = await running.client.token("reader", ["orders:read"]);
    const bearer = await fetch(`${running.node.url}/_console`, {
      headers: { authorization: `Bearer ${reader}` },
    });
    expect(bearer.status).toBe(403);
    const query = await fetch(`${running.node.url}/_console?token=${reader}`, { redirect: "manual" });
    expect(query.status).toBe(403);
    expect(query.headers.get("set-cookie")).toBeNull();

    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      expect((await page.goto(`${running.node.url}/_console`))?.status()).toBe(401);
      expect(await page.content()).toContain("/_console?token=");
      expect((await page.goto(`${running.node.url}/_console?token=${reader}`))?.status()).toBe(403);
      await shot(page, "forbidden");
    } finally {
      await context.close();
    }
  }, 30_000);

  test("a form post without the session's CSRF token is refused", async () => {
    const admin = await running.client.token();
    const login = await fetch(`${running.node.url}/_console?token=${admin}`, { redirect: "manual" });
    expect(login.status).toBe(303);
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const forged = await fetch(`${running.node.url}/_console/dlq/purge`, {
      method: "POST",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      body: "csrf=0123",
      redirect: "manual",
    });
    expect(forged.status).toBe(403);
  });
});
