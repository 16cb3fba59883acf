// The console's dead-letter table names the customer of a billing or loyalty target, not only its encoded actor key.
//
// A customerId that is not URL-safe (`café `, `auth0|…`) reaches its actors as `~u.` and base64url (customer-key.ts):
// a dead letter for `loyalty/~u.Y2Fmw6kg` told an operator nothing. A commerce node on Bun (real Postgres, its
// embedded broker), a message its loyalty actor refuses (dead-lettered at once), and the console as an admin gets it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { customerKey } from "../../actors/commerce/customer-key.ts";
import { createEnvelope } from "../../shared/envelope/index.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { eventually, uniqueName } from "../commerce/client.ts";

let running: CommerceNode;

beforeAll(async () => {
  running = await startCommerceNode("console_customer_target", { EDGEWISE_DELIVERY_RETRIES: "0" });
}, 60_000);
afterAll(() => running?.stop());

const broker = (path: string, init: RequestInit = {}) =>
  fetch(`${running.node.brokerUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${running.node.broker?.token}`, ...init.headers },
  });

test("a dead letter for a customer's loyalty actor is shown as that customer, quoted", async () => {
  const customerId = `${uniqueName("café")} `; // not URL-safe: its key is encoded
  const target = `loyalty/${customerKey(customerId)}`;
  const envelope = createEnvelope({ type: "NoSuchMessage", source: "edgewise://test", target, data: {} });
  const published = await broker(`/v2/publish/${running.node.url}/_edgewise/deliver/${target}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(envelope),
  });
  expect(published.status).toBe(201);
  await eventually(async () => {
    const { messages } = (await (await broker("/v2/dlq")).json()) as { messages: Array<{ url: string }> };
    return messages.some((letter) => letter.url.endsWith(target));
  }, "the refused delivery's dead letter");

  const page = await fetch(`${running.node.url}/_console`, {
    headers: { authorization: `Bearer ${await running.client.token()}`, accept: "text/html" },
  });
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain(`loyalty of customer &quot;${customerId}&quot;`);
  expect(html).toContain('<td class="message">NoSuchMessage</td>');
}, 60_000);
