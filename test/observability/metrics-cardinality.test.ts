// /metrics on a whole node under random paths, ids, methods, sources and webhook hosts: no value becomes a series.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { generateSecret } from "../../actors/commerce/webhooks/index.ts";
import { startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, uniqueName } from "../commerce/client.ts";
import { type Scrape, scrape } from "./metrics-scrape.ts";

let running: CommerceNode;
/** Webhook receivers, each on a port of its own: a host (`127.0.0.1:<port>`) of its own to the node. */
const receivers: Array<ReturnType<typeof startReceiver>> = [];
beforeAll(async () => {
  running = await startCommerceNode("metrics_cardinality", {
    INBOUND_WEBHOOK_SECRETS: `supplier=${generateSecret()}`,
  });
}, 30_000);
afterAll(async () => {
  for (const receiver of receivers) receiver.stop();
  await running?.stop();
});

/** A value a client chose: recognizable, so that one leaking into a label is found in the text. */
const random = () => `zq${crypto.randomUUID().replace(/-/g, "").slice(0, 10)}`;
const leaked = /zq[0-9a-f]{10}/g;
/** Methods Bun's parser lets through besides the usual ones; any is `_OTHER` in the labels. */
const oddMethods = ["PROPFIND", "MKCOL", "PURGE", "M-SEARCH", "LINK", "REPORT", "SEARCH", "PATCH", "TRACE"];

/** Each series of the scrape, as `name{labels}` (histogram buckets aside: one series per label set). */
function seriesOf(scraped: Scrape): Set<string> {
  const series = new Set<string>();
  for (const line of scraped.text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const name = line.slice(0, line.search(/[{ ]/)).replace(/_(bucket|sum|count)$/, "");
    const labels = /\{(.*)\}/.exec(line)?.[1]?.replace(/,?le="[^"]*"/, "") ?? "";
    series.add(`${name}{${labels}}`);
  }
  return series;
}

/** A round of traffic naming only new values: 625 requests, and webhooks to `hosts` new receiver hosts. */
async function round(hosts: number): Promise<void> {
  const api = running.client;
  const admin = `Bearer ${await api.token()}`;
  const requests: Array<[method: string, path: string, headers?: Record<string, string>, body?: string]> = [];
  for (let i = 0; i < 25; i++) {
    const json = { authorization: admin, "content-type": "application/json" };
    requests.push(
      ["GET", `/${random()}/${random()}?${random()}=${random()}`],
      ["GET", `/v1/inventory/${random()}`, { authorization: admin }],
      ["PUT", `/v1/inventory/${random()}`, json, '{"available":1,"priceCents":1}'],
      ["GET", `/v1/accounts/${random()}`, { authorization: admin }],
      ["GET", `/v1/customers/${random()}/loyalty`, { authorization: admin }],
      ["GET", `/v1/orders/${random()}`, { authorization: admin }],
      ["POST", `/v1/orders/${random()}/cancel`, { authorization: admin }],
      ["DELETE", `/v1/webhooks/subscriptions/${random()}`, { authorization: admin }],
      ["DELETE", `/v1/api-keys/${random()}`, { authorization: admin }],
      ["POST", `/webhooks/inbound/${random()}`, { "content-type": "application/json" }, "{}"],
      ["POST", `/_edgewise/deliver/${random()}/${random()}`, { "upstash-signature": random() }, "{}"],
      ["GET", `/_edgewise/${random()}`],
      ["GET", `/_console/${random()}`, { authorization: admin }],
      ["GET", `/_console/actors/${random()}/${random()}`, { authorization: admin }],
      ["GET", `/_console/traces/${random()}`, { authorization: admin }],
      ["GET", `/v1/orders?customerId=${random()}&q=${random()}`, { authorization: admin }],
      ["GET", `/v1/counters/${random()}`, { authorization: `Bearer ${random()}.${random()}.${random()}` }],
      ["POST", `/v1/counters/${random()}/increment`, json, "{}"],
      [oddMethods[i % oddMethods.length] as string, `/v1/inventory/${random()}`, { authorization: admin }],
      [oddMethods[(i + 3) % oddMethods.length] as string, `/${random()}`],
      ["OPTIONS", `/v1/accounts/${random()}`],
      ["HEAD", `/v1/orders/${random()}`, { authorization: admin }],
      ["GET", `/metrics/${random()}`],
      ["GET", `/v1/orders/${random()}/`, { authorization: admin }],
      ["GET", `/healthz?${random()}`],
    );
  }
  for (let i = 0; i < requests.length; i += 50) {
    await Promise.all(
      requests.slice(i, i + 50).map(async ([method, path, headers, body]) => {
        const response = await fetch(`${running.node.url}${path}`, {
          method,
          ...(headers ? { headers } : {}),
          ...(body ? { body } : {}),
        });
        await response.arrayBuffer();
      }),
    );
  }

  // Webhook subscriptions at new hosts (receivers chosen by whoever holds webhooks:admin), each delivered to once.
  const fresh = Array.from({ length: hosts }, () => startReceiver());
  receivers.push(...fresh);
  for (const receiver of fresh) {
    expectOk(
      await api.call("POST", "/v1/webhooks/subscriptions", {
        body: { url: receiver.url(`/${random()}`), events: ["order.confirmed"] },
      }),
    );
  }
  const customer = uniqueName("card-cust");
  const sku = uniqueName("card-sku");
  await api.putSku(sku, 10, 100);
  await api.putAccount(customer, 10_000);
  expect((await api.place(customer, [{ sku, quantity: 1 }])).status).toBe(202);
  await eventually(
    () => fresh.every((receiver) => receiver.deliveries.length > 0),
    "every new host's webhook",
  );
  // /metrics is rendered at most once a second on a node: the next scrape must be a new render.
  await Bun.sleep(1_100);
}

test("625 requests and 20 webhook hosts, all named by new random values, add no series, and no value shows in a label", async () => {
  await round(20);
  const first = await scrape(running.node.url);
  await round(20);
  const second = await scrape(running.node.url);

  expect([...new Set(second.text.match(leaked) ?? [])]).toEqual([]);
  // Nor any receiver's host: a webhook URL's part, chosen by the subscriber.
  expect([...new Set(second.text.match(/127\.0\.0\.1:\d+/g) ?? [])]).toEqual([]);
  const before = seriesOf(first);
  const added = [...seriesOf(second)].filter((series) => !before.has(series));
  // A second round of all-new paths, ids, skus, customers, sources, targets and hosts: the same series as the first
  // (a few more at most, for an outcome seen for the first time), not one per value.
  expect(added.length, added.join("\n")).toBeLessThanOrEqual(3);
  expect(before.size).toBeLessThan(1_000);
}, 120_000);
