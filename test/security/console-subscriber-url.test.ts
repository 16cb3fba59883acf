// The console's dead-letter table never shows a secret a webhook subscriber put in its URL's query or fragment.
//
// Subscribers often authenticate a receiver with a token in the URL (`?token=…`, `?code=…`, `?sig=…`); the
// subscription API refuses userinfo, but not those. A commerce node on Bun (real Postgres, its embedded broker), a
// receiver that fails so the delivery is dead-lettered at once, and the console page as an admin's browser gets it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startReceiver } from "../broker/helpers.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, expectOk, uniqueName } from "../commerce/client.ts";

let running: CommerceNode;
const receiver = startReceiver(() => new Response("down", { status: 500 }));

beforeAll(async () => {
  // No retries: a failed webhook delivery is dead-lettered at once.
  running = await startCommerceNode("console_subscriber_url", { EDGEWISE_DELIVERY_RETRIES: "0" });
}, 60_000);
afterAll(async () => {
  receiver.stop();
  await running?.stop();
});

async function deadLetters(): Promise<Array<{ url: string }>> {
  const response = await fetch(`${running.node.brokerUrl}/v2/dlq`, {
    headers: { authorization: `Bearer ${running.node.broker?.token}` },
  });
  return ((await response.json()) as { messages: Array<{ url: string }> }).messages;
}

test("a subscriber's URL is shown with its query values and fragment masked, its host, path and names kept", async () => {
  // Short tokens, as receivers use them: not the long mixed-case runs the log redactor recognizes by shape.
  const secrets = ["tok3n-q1", "s1gq2val", "k3yq3val", "fr4gm3nt"];
  const hookUrl = receiver.url(
    `/in/hook?token=${secrets[0]}&sig=${secrets[1]}&key=${secrets[2]}&tenant=acme#${secrets[3]}`,
  );
  const hook = expectOk(
    await running.client.call<{ id: string }>("POST", "/v1/webhooks/subscriptions", {
      body: { url: hookUrl, events: ["order.confirmed"] },
    }),
  );
  const api = running.client;
  const [sku, customer] = [uniqueName("mask-sku"), uniqueName("mask-cust")];
  await api.putSku(sku, 5, 400);
  await api.putAccount(customer, 10_000);
  const placed = await api.place(customer, [{ sku, quantity: 1 }]);
  await api.settle(placed.body.orderId);
  await eventually(
    async () => (await deadLetters()).some((d) => d.url.endsWith(`/webhooks/${hook.id}`)),
    "the failed webhook delivery's dead letter",
    15_000,
  );
  // The secrets reached the receiver: the URL is used as given, only the page masks it.
  expect(receiver.deliveries.some((d) => d.path.includes(secrets[0] as string))).toBe(true);

  const page = await fetch(`${running.node.url}/_console`, {
    headers: { authorization: `Bearer ${await api.token()}`, accept: "text/html" },
  });
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain(`webhook subscription ${hook.id}`);
  for (const secret of secrets) expect(html).not.toContain(secret);
  // What tells the operator which receiver it is stays: its host and path, and which parameters it is given.
  const { host } = new URL(hookUrl);
  expect(html).toContain(`http://${host}/in/hook?token=[redacted]&amp;sig=[redacted]&amp;key=[redacted]`);
}, 60_000);
