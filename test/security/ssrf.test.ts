// Security suite, ssrf: webhook URLs aimed inside are refused at registration (HTTP API) and again at delivery; redirects are never followed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateSecret, PostgresWebhookStore, type Resolve } from "../../actors/commerce/webhooks/index.ts";
import { caseResolver, ssrfCases } from "../../actors/commerce/webhooks/ssrf-cases.ts";
import { prefixedId } from "../../shared/ids/index.ts";
import { type Delivery, startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, uniqueName } from "../commerce/client.ts";
import { attackCategory } from "./report.ts";
import { expectClosed } from "./support.ts";

const cases = attackCategory("ssrf");

const PUBLIC_V4 = "93.184.215.14";
/** Names this suite's resolver answers on top of the case table's; `rebind` changes its answer mid-test. */
const names = new Map<string, string[]>([
  ["loopback.security.test", ["127.0.0.1"]],
  ["rebind.security.test", [PUBLIC_V4]],
  ["public.security.test", [PUBLIC_V4]],
]);
const fromTable = caseResolver();
const resolve: Resolve = async (hostname) => names.get(hostname) ?? fromTable(hostname);

/** WEBHOOKS_ALLOW_PRIVATE=0, the production setting. */
let strict: CommerceNode;
/** WEBHOOKS_ALLOW_PRIVATE=1, as tests and development run: only the redirect rule protects it. */
let permissive: CommerceNode;

beforeAll(async () => {
  [strict, permissive] = await Promise.all([
    startCommerceNode("security_ssrf", { WEBHOOKS_ALLOW_PRIVATE: "0" }, { resolve }),
    startCommerceNode("security_ssrf_private", { EDGEWISE_DELIVERY_RETRIES: "1" }),
  ]);
}, 30_000);
afterAll(() => Promise.all([strict?.stop(), permissive?.stop()]));

const subscribe = (node: CommerceNode, url: string, events = ["order.confirmed"]) =>
  node.client.call<{ id: string }>("POST", "/v1/webhooks/subscriptions", { body: { url, events } });

async function storedSubscriptions(node: CommerceNode): Promise<number> {
  const [row] = await node.node.sql<
    Array<{ n: number }>
  >`SELECT count(*)::int AS n FROM webhook_subscriptions`;
  return row?.n ?? 0;
}

async function confirmOrder(node: CommerceNode) {
  const api = node.client;
  const [sku, customer] = [uniqueName("ssrf-sku"), uniqueName("ssrf-cust")];
  await api.putSku(sku, 5, 400);
  await api.putAccount(customer, 10_000);
  return api.settle((await api.place(customer, [{ sku, quantity: 1 }])).body.orderId);
}

describe("at registration (POST /v1/webhooks/subscriptions)", () => {
  test("every refused URL of the case table, and names resolving inside, get 400 problem+json and store nothing", async () => {
    const refused = [
      ...ssrfCases.filter((entry) => entry.refused !== undefined).map((entry) => entry.url),
      "http://loopback.security.test/hook",
      "http://loopback.security.test.:8080/hook",
      "http://foo.localhost:8787/",
      "http://[::ffff:127.0.0.1]:8787/",
      "http://127.0.0.1:80@public.security.test/",
      "http://public.security.test@127.0.0.1/",
    ];
    for (const url of refused) {
      const before = await storedSubscriptions(strict);
      const answer = await subscribe(strict, url);
      expectClosed(
        cases,
        `register ${url}`,
        {
          status: answer.status,
          problem: answer.headers.get("content-type"),
          stored: (await storedSubscriptions(strict)) - before,
        },
        { status: 400, problem: "application/problem+json", stored: 0 },
      );
    }
    // The guard is not refusing everything: a public name is taken.
    const control = await subscribe(strict, "https://public.security.test/hook");
    expect(control.status).toBe(201);
    expect((await strict.client.call("DELETE", `/v1/webhooks/subscriptions/${control.body.id}`)).status).toBe(
      204,
    );
  });

  test("WEBHOOKS_ALLOW_PRIVATE=1 allows loopback, but still refuses other schemes and credentials", async () => {
    expect((await subscribe(permissive, "http://127.0.0.1:9/x", ["order.rejected"])).status).toBe(201);
    for (const url of [
      "ftp://127.0.0.1/",
      "file:///etc/passwd",
      "gopher://127.0.0.1:6379/_FLUSHALL",
      "http://a:b@127.0.0.1/",
    ]) {
      const before = await storedSubscriptions(permissive);
      const answer = await subscribe(permissive, url);
      expectClosed(
        cases,
        `register ${url} with private addresses allowed`,
        { status: answer.status, stored: (await storedSubscriptions(permissive)) - before },
        { status: 400, stored: 0 },
      );
    }
  });
});

describe("at delivery", () => {
  test("a subscription whose URL now reaches inside is refused on every attempt; the receiver is never hit", async () => {
    const receiver = startReceiver();
    try {
      const port = Number(new URL(receiver.url()).port);
      // Registered while its name resolved to a public address; then the name is rebound to loopback.
      const rebound = expectOk(await subscribe(strict, `http://rebind.security.test:${port}/rebind`));
      names.set("rebind.security.test", ["127.0.0.1"]);
      // Rows that never went through the API (an older version, an operator's insert): the guard runs again.
      const store = new PostgresWebhookStore(strict.node.sql);
      const inserted: Array<[string, string]> = [];
      for (const url of [
        `http://127.0.0.1:${port}/literal`,
        `http://[::ffff:127.0.0.1]:${port}/mapped`,
        `http://2130706433:${port}/decimal`,
        `http://0177.0.0.1:${port}/octal`,
        `http://0x7f.0.0.1:${port}/hex`,
        `http://127.1:${port}/short`,
        `http://0.0.0.0:${port}/unspecified`,
        `http://localhost:${port}/localhost`,
        `http://foo.localhost:${port}/sub-localhost`,
        `http://loopback.security.test:${port}/resolved`,
        `http://[::1]:${port}/v6-loopback`,
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/unique-local",
      ]) {
        const created = await store.createSubscription({
          id: prefixedId("whsub"),
          url,
          events: ["order.confirmed"],
          secret: generateSecret(),
        });
        inserted.push([url, created.id]);
      }
      const targets: Array<[string, string]> = [[`rebound name ${rebound.id}`, rebound.id], ...inserted];
      const order = await confirmOrder(strict);
      const outcomes = async (id: string) => (await store.listAttempts(id)).map((attempt) => attempt.outcome);
      await eventually(
        async () =>
          (await Promise.all(targets.map(([, id]) => outcomes(id)))).every((list) => list.length > 0),
        "an attempt at every subscription",
      );
      await Bun.sleep(300);
      for (const [url, id] of targets) {
        const path = url.startsWith("rebound") ? "/rebind" : new URL(url).pathname;
        expectClosed(
          cases,
          `deliver to ${url}`,
          {
            outcomes: [...new Set(await outcomes(id))],
            hits: receiver.deliveries.filter((d) => d.path === path).length,
          },
          { outcomes: ["refused"], hits: 0 },
        );
      }
      expect(receiver.deliveries).toEqual([]);
      expect(order.status).toBe("confirmed");
    } finally {
      names.set("rebind.security.test", [PUBLIC_V4]);
      receiver.stop();
    }
  }, 30_000);

  test("a receiver answering with a redirect to another loopback port is not followed; the second server is never hit", async () => {
    const hidden = startReceiver();
    const statuses = [301, 302, 303, 307, 308];
    const redirector = startReceiver(
      (delivery: Delivery) =>
        new Response(null, {
          status: Number(delivery.path.slice(1)),
          headers: { location: hidden.url(`/stolen${delivery.path}`) },
        }),
    );
    try {
      const subscriptions = statuses.map((status) => [status, redirector.url(`/${status}`)] as const);
      const ids: Array<[number, string]> = [];
      for (const [status, url] of subscriptions)
        ids.push([status, expectOk(await subscribe(permissive, url)).id]);
      await confirmOrder(permissive);
      const store = new PostgresWebhookStore(permissive.node.sql);
      await eventually(
        async () =>
          (await Promise.all(ids.map(([, id]) => store.listAttempts(id)))).every((list) => list.length > 0),
        "an attempt at every redirecting subscription",
      );
      await Bun.sleep(300);
      for (const [status, id] of ids) {
        const attempts = await store.listAttempts(id);
        expectClosed(
          cases,
          `a ${status} redirect to another loopback port`,
          {
            redirectorHit: redirector.deliveries.some((d) => d.path === `/${status}`),
            outcomes: [...new Set(attempts.map((attempt) => attempt.outcome))],
            // Later attempts may not be sent at all (the receiver's breaker opened: status null).
            statuses: [...new Set(attempts.flatMap((attempt) => attempt.statusCode ?? []))],
            hiddenHits: hidden.deliveries.length,
          },
          { redirectorHit: true, outcomes: ["failed"], statuses: [status], hiddenHits: 0 },
        );
      }
    } finally {
      redirector.stop();
      hidden.stop();
    }
  }, 30_000);
});
