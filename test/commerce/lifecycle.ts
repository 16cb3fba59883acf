// The order lifecycle of API.md, end to end over HTTP: every branch, run on each host (Bun, Deno, Durable Objects).
import { describe, expect, test } from "bun:test";
import { Webhook } from "standardwebhooks";
import { type Delivery, startReceiver } from "../broker/helpers.ts";
import { type CommerceClient, eventually, expectOk, type OrderView, uniqueName } from "./client.ts";
import { idsCases } from "./lifecycle-ids.ts";

/**
 * What every host of this suite is started with: a METRICS_TOKEN, so GET /metrics answers as API.md's "admin where
 * configured" on each of them.
 */
export const lifecycleEnv = { METRICS_TOKEN: "lifecycle-metrics-token-0123456789" };

/** Registers the lifecycle tests against whatever gateway `client()` reaches (called after the host started). */
export function lifecycleSuite(host: string, client: () => CommerceClient, timeoutMs = 30_000) {
  describe(`order lifecycle (${host})`, () => {
    test(
      "confirmed: stock is sold, the account is charged once, loyalty is credited",
      async () => {
        const api = client();
        const [apple, pear, alice] = [uniqueName("apple"), uniqueName("pear"), uniqueName("alice")];
        await api.putSku(apple, 10, 250);
        await api.putSku(pear, 5, 1_000);
        await api.putAccount(alice, 10_000);
        const placed = await api.place(alice, [
          { sku: apple, quantity: 2 },
          { sku: pear, quantity: 3 },
          { sku: apple, quantity: 1 },
        ]);
        expect(placed.status).toBe(202);
        expect(placed.body.status).toBe("pending");
        expect(placed.headers.get("location")).toBe(`/v1/orders/${placed.body.orderId}`);

        const order = await api.settle(placed.body.orderId);
        expect(order.status).toBe("confirmed");
        expect(order.totalCents).toBe(3 * 250 + 3 * 1_000);
        expect(order.items).toContainEqual({ sku: apple, quantity: 3, unitPriceCents: 250 });
        expect(await api.balance(alice)).toBe(10_000 - 3_750);
        await eventually(async () => (await api.points(alice)) === 37, "loyalty points");
        await eventually(async () => (await api.sku(apple)).reserved === 0, "reservation turned into a sale");
        expect(await api.sku(apple)).toMatchObject({ available: 7, reserved: 0 });
        expect(await api.sku(pear)).toMatchObject({ available: 2, reserved: 0 });
        // The read model follows: the list finds it by customer and by sku.
        await eventually(async () => {
          const page = await api.call<{ items: Array<{ orderId: string; status: string }> }>(
            "GET",
            `/v1/orders?customerId=${alice}&q=${pear}`,
          );
          return page.body.items.some(
            (item) => item.orderId === order.orderId && item.status === "confirmed",
          );
        }, "the read model to show the confirmed order");
      },
      timeoutMs,
    );

    test(
      "out of stock: rejected, every reservation released, nothing charged",
      async () => {
        const api = client();
        const [plenty, scarce, bob] = [uniqueName("plenty"), uniqueName("scarce"), uniqueName("bob")];
        await api.putSku(plenty, 10, 100);
        await api.putSku(scarce, 1, 100);
        await api.putAccount(bob, 10_000);
        const placed = await api.place(bob, [
          { sku: plenty, quantity: 4 },
          { sku: scarce, quantity: 2 },
        ]);
        const order = await api.settle(placed.body.orderId);
        expect(order).toMatchObject({ status: "rejected", reason: "out_of_stock" });
        await eventually(
          async () => (await api.sku(plenty)).available === 10 && (await api.sku(plenty)).reserved === 0,
          "the plenty sku's reservation to be released",
        );
        expect(await api.sku(scarce)).toMatchObject({ available: 1, reserved: 0 });
        expect(await api.balance(bob)).toBe(10_000);
        expect(await api.points(bob)).toBe(0);
      },
      timeoutMs,
    );

    test(
      "insufficient funds: rejected, stock released, balance untouched",
      async () => {
        const api = client();
        const [gold, carol] = [uniqueName("gold"), uniqueName("carol")];
        await api.putSku(gold, 3, 5_000);
        await api.putAccount(carol, 4_999);
        const placed = await api.place(carol, [{ sku: gold, quantity: 1 }]);
        const order = await api.settle(placed.body.orderId);
        expect(order).toMatchObject({ status: "rejected", reason: "insufficient_funds", totalCents: 5_000 });
        // The list (the read model) shows what the order shows: its priced line and its total.
        await eventually(async () => {
          const listed = await api.call<{ items: OrderView[] }>("GET", `/v1/orders?customerId=${carol}`);
          return listed.body.items?.[0]?.status === "rejected";
        }, "the rejection in the order list");
        const listed = await api.call<{ items: OrderView[] }>("GET", `/v1/orders?customerId=${carol}`);
        expect(listed.body.items[0]).toMatchObject({
          orderId: placed.body.orderId,
          reason: "insufficient_funds",
          totalCents: 5_000,
          items: [{ sku: gold, quantity: 1, unitPriceCents: 5_000 }],
        });
        await eventually(async () => (await api.sku(gold)).reserved === 0, "the reservation to be released");
        expect(await api.sku(gold)).toMatchObject({ available: 3, reserved: 0 });
        expect(await api.balance(carol)).toBe(4_999);
        expect(await api.points(carol)).toBe(0);
      },
      timeoutMs,
    );

    test(
      "cancel after confirm: refunded, units back in stock, points taken back",
      async () => {
        const api = client();
        const [book, dave] = [uniqueName("book"), uniqueName("dave")];
        await api.putSku(book, 5, 1_250);
        await api.putAccount(dave, 5_000);
        const placed = await api.place(dave, [{ sku: book, quantity: 2 }]);
        expect((await api.settle(placed.body.orderId)).status).toBe("confirmed");
        await eventually(async () => (await api.points(dave)) === 25, "points credited");

        const cancelled = await api.cancel(placed.body.orderId);
        expect(cancelled.status).toBe(202);
        expect((await api.settle(placed.body.orderId, (o) => o.status === "cancelled")).status).toBe(
          "cancelled",
        );
        await eventually(async () => (await api.balance(dave)) === 5_000, "the refund");
        // The refund shows on the order soon after, not when a cached copy of it expires.
        await eventually(
          async () => (await api.order(placed.body.orderId)).refundedAt !== undefined,
          "refundedAt on the order",
        );
        // The list (the read model) shows the same refundedAt as the order itself.
        const { refundedAt } = await api.order(placed.body.orderId);
        await eventually(async () => {
          const page = expectOk(
            await api.call<{ items: OrderView[] }>(
              "GET",
              `/v1/orders?customerId=${encodeURIComponent(dave)}`,
            ),
          );
          return page.items.find((item) => item.orderId === placed.body.orderId)?.refundedAt === refundedAt;
        }, "refundedAt in the list");
        await eventually(async () => (await api.points(dave)) === 0, "points taken back");
        await eventually(async () => (await api.sku(book)).available === 5, "units back in stock");
        // Cancelling again changes nothing.
        expect((await api.cancel(placed.body.orderId)).status).toBe(202);
        expect((await api.order(placed.body.orderId)).status).toBe("cancelled");
        expect(await api.balance(dave)).toBe(5_000);
      },
      timeoutMs,
    );

    test(
      "cancel while pending: cancelled once it settles, nothing kept",
      async () => {
        const api = client();
        const [pen, erin] = [uniqueName("pen"), uniqueName("erin")];
        await api.putSku(pen, 4, 300);
        await api.putAccount(erin, 1_000);
        const placed = await api.place(erin, [{ sku: pen, quantity: 2 }]);
        // At once, before the saga can settle.
        const cancel = await api.cancel(placed.body.orderId);
        expect(cancel.status).toBe(202);
        const order = await api.settle(placed.body.orderId, (o) => o.status === "cancelled");
        expect(order.status).toBe("cancelled");
        await eventually(async () => (await api.balance(erin)) === 1_000, "no charge kept");
        await eventually(async () => {
          const sku = await api.sku(pen);
          return sku.available === 4 && sku.reserved === 0;
        }, "the stock back");
        expect(await api.points(erin)).toBe(0);
        // The read model lists it priced, as GET /v1/orders/{id} shows it: OrderCancelled is the only event after
        // the placement that carries the prices.
        await eventually(async () => {
          const page = await api.call<{
            items: Array<{ orderId: string; status: string; items: Array<{ unitPriceCents?: number }> }>;
          }>("GET", `/v1/orders?customerId=${erin}`);
          const listed = page.body.items.find((item) => item.orderId === placed.body.orderId);
          return listed?.status === "cancelled" && listed.items[0]?.unitPriceCents === 300;
        }, "the cancelled order listed with its price");
      },
      timeoutMs,
    );

    test(
      "a rejected order cannot be cancelled into anything else",
      async () => {
        const api = client();
        const [rare, fay] = [uniqueName("rare"), uniqueName("fay")];
        await api.putSku(rare, 0, 100);
        await api.putAccount(fay, 1_000);
        const placed = await api.place(fay, [{ sku: rare, quantity: 1 }]);
        expect((await api.settle(placed.body.orderId)).status).toBe("rejected");
        expect((await api.cancel(placed.body.orderId)).status).toBe(202);
        expect((await api.order(placed.body.orderId)).status).toBe("rejected");
      },
      timeoutMs,
    );

    test(
      "Idempotency-Key: the same key and body give the same order, another body gets 422, one charge",
      async () => {
        const api = client();
        const [mug, gus] = [uniqueName("mug"), uniqueName("gus")];
        await api.putSku(mug, 10, 800);
        await api.putAccount(gus, 10_000);
        const key = { "idempotency-key": uniqueName("key") };
        const first = await api.place(gus, [{ sku: mug, quantity: 1 }], key);
        const again = await api.place(gus, [{ sku: mug, quantity: 1 }], key);
        expect(first.status).toBe(202);
        expect(again.status).toBe(202);
        expect(again.body.orderId).toBe(first.body.orderId);

        const other = await api.place(gus, [{ sku: mug, quantity: 2 }], key);
        expect(other.status).toBe(422);
        expect(other.headers.get("content-type")).toContain("application/problem+json");
        expect((other.body as unknown as { code: string }).code).toBe("idempotency.mismatch");

        expect((await api.settle(first.body.orderId)).status).toBe("confirmed");
        // A retry after confirmation still returns the same order and charges nothing more.
        const late = await api.place(gus, [{ sku: mug, quantity: 1 }], key);
        expect(late.body.orderId).toBe(first.body.orderId);
        await Bun.sleep(200);
        expect(await api.balance(gus)).toBe(10_000 - 800);
        expect(await api.sku(mug)).toMatchObject({ available: 9, reserved: 0 });
      },
      timeoutMs,
    );

    test(
      "object-level authorization: another customer's order is 403, an unknown one 404",
      async () => {
        const api = client();
        const [cup, hal, ivy] = [uniqueName("cup"), uniqueName("hal"), uniqueName("ivy")];
        await api.putSku(cup, 5, 100);
        await api.putAccount(hal, 1_000);
        const placed = await api.place(hal, [{ sku: cup, quantity: 1 }]);
        const asIvy = { sub: ivy, scopes: ["orders:read", "orders:write", "billing:read", "loyalty:read"] };
        expect((await api.call("GET", `/v1/orders/${placed.body.orderId}`, { as: asIvy })).status).toBe(403);
        expect(
          (await api.call("POST", `/v1/orders/${placed.body.orderId}/cancel`, { as: asIvy })).status,
        ).toBe(403);
        expect((await api.call("GET", `/v1/accounts/${hal}`, { as: asIvy })).status).toBe(403);
        expect((await api.call("GET", `/v1/customers/${hal}/loyalty`, { as: asIvy })).status).toBe(403);
        const forHal = await api.call("POST", "/v1/orders", {
          as: asIvy,
          body: { customerId: hal, items: [{ sku: cup, quantity: 1 }] },
        });
        expect(forHal.status).toBe(403);
        const asHal = { sub: hal, scopes: ["orders:read"] };
        expect((await api.call("GET", `/v1/orders/${placed.body.orderId}`, { as: asHal })).status).toBe(200);
        expect((await api.call("GET", `/v1/orders/${uniqueName("nope")}`, { as: asHal })).status).toBe(404);
        expect((await api.call("GET", `/v1/inventory/${uniqueName("never")}`)).status).toBe(404);
      },
      timeoutMs,
    );

    test(
      "API keys: minted by an admin and shown once, they act as their sub with their scopes; a revoked one stops",
      async () => {
        const api = client();
        const [sku, ada] = [uniqueName("lamp"), uniqueName("ada")];
        await api.putSku(sku, 5, 700);
        await api.putAccount(ada, 5_000);
        const minted = await api.call<{ id: string; key: string }>("POST", "/v1/api-keys", {
          body: { sub: ada, scopes: ["orders:write", "orders:read", "billing:read"], name: "lifecycle" },
        });
        expect(minted.status).toBe(201);
        const withKey = (method: string, path: string, body?: unknown) =>
          fetch(`${api.target.base}${path}`, {
            method,
            headers: {
              "x-api-key": minted.body.key,
              ...(body === undefined ? {} : { "content-type": "application/json" }),
            },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          });
        const placed = await withKey("POST", "/v1/orders", {
          customerId: ada,
          items: [{ sku, quantity: 1 }],
        });
        expect(placed.status).toBe(202);
        const { orderId } = (await placed.json()) as { orderId: string };
        expect((await api.settle(orderId)).status).toBe("confirmed");
        expect((await withKey("GET", `/v1/accounts/${ada}`)).status).toBe(200);
        // Its scopes and its sub bound it: no inventory writes, and no other customer's account.
        expect((await withKey("PUT", `/v1/inventory/${sku}`, { available: 1, priceCents: 1 })).status).toBe(
          403,
        );
        expect((await withKey("GET", `/v1/accounts/${uniqueName("bob")}`)).status).toBe(403);
        expect((await api.call("DELETE", `/v1/api-keys/${minted.body.id}`)).status).toBe(204);
        // API.md: the key stops working within 5 s everywhere.
        await eventually(
          async () => (await withKey("GET", `/v1/accounts/${ada}`)).status === 401,
          "revoked",
          5_000,
        );
      },
      timeoutMs,
    );

    test(
      "a customer named by an identity provider's sub (auth0|…, an email) orders as themselves, end to end",
      async () => {
        const api = client();
        const sku = uniqueName("kite");
        // Subs as Auth0 and others issue them: characters an actor key cannot carry, and a non-ASCII one.
        const customers = [`auth0|${uniqueName("5f1c")}`, `${uniqueName("zoë")}@example.com`];
        await api.putSku(sku, 10, 1_250);
        for (const customerId of customers) {
          await api.putAccount(customerId, 10_000);
          const as = {
            sub: customerId,
            scopes: ["orders:read", "orders:write", "billing:read", "loyalty:read"],
          };
          const placed = await api.call<{ orderId: string }>("POST", "/v1/orders", {
            as,
            body: { customerId, items: [{ sku, quantity: 2 }] },
          });
          expect(placed.status).toBe(202);
          const order = await api.settle(placed.body.orderId);
          expect(order).toMatchObject({ status: "confirmed", customerId, totalCents: 2_500 });
          const path = encodeURIComponent(customerId);
          expect((await api.call("GET", `/v1/accounts/${path}`, { as })).body).toEqual({
            customerId,
            balanceCents: 7_500,
          });
          await eventually(async () => {
            const loyalty = await api.call<{ customerId: string; points: number }>(
              "GET",
              `/v1/customers/${path}/loyalty`,
              { as },
            );
            return loyalty.body.customerId === customerId && loyalty.body.points === 25;
          }, "loyalty points for the customer");
          await eventually(async () => {
            const page = await api.call<{ items: Array<{ orderId: string }> }>("GET", "/v1/orders", { as });
            return page.body.items.some((item) => item.orderId === order.orderId);
          }, "the customer's own list to show the order");
        }
        expect(await api.sku(sku)).toMatchObject({ available: 6, reserved: 0 });
      },
      timeoutMs,
    );

    test(
      "GET /metrics with METRICS_TOKEN set: the token or an admin JWT scrape it; anyone else gets problem+json",
      async () => {
        const api = client();
        const scrape = (authorization?: string) =>
          fetch(`${api.target.base}/metrics`, authorization ? { headers: { authorization } } : {});
        const anonymous = await scrape();
        expect(anonymous.status).toBe(401);
        expect(anonymous.headers.get("content-type")).toContain("application/problem+json");
        expect(anonymous.headers.get("www-authenticate")).toContain("Bearer");
        expect(await anonymous.text()).not.toContain("# HELP");
        expect((await scrape("Bearer not-the-metrics-token-0123")).status).toBe(401);
        expect(
          (await scrape(`Bearer ${await api.token(uniqueName("viewer"), ["orders:read"])}`)).status,
        ).toBe(403);
        for (const authorization of [`Bearer ${lifecycleEnv.METRICS_TOKEN}`, `Bearer ${await api.token()}`]) {
          const scraped = await scrape(authorization);
          expect(scraped.status).toBe(200);
          expect(await scraped.text()).toContain("# HELP http_server_request_duration_seconds");
        }
      },
      timeoutMs,
    );

    test(
      "admin actions are admin.* events in the activity log: who, the request, the target, never the key",
      async () => {
        const api = client();
        const customerId = uniqueName("audited");
        const minted = await api.call<{ id: string; key: string }>("POST", "/v1/api-keys", {
          body: { sub: customerId, scopes: ["billing:write"] },
          as: { sub: "lifecycle-admin", scopes: ["admin"] },
        });
        expect(minted.status).toBe(201);
        const set = await fetch(`${api.target.base}/v1/accounts/${customerId}`, {
          method: "PUT",
          headers: { "x-api-key": minted.body.key, "content-type": "application/json" },
          body: JSON.stringify({ balanceCents: 4_200 }),
        });
        expect(set.status).toBe(200);
        expect((await api.call("DELETE", `/v1/api-keys/${minted.body.id}`)).status).toBe(204);
        const events = async (subject: string) =>
          (
            await api.call<{ items: Array<{ type: string; data: Record<string, unknown> }> }>(
              "GET",
              `/v1/activity?subject=${encodeURIComponent(subject)}`,
            )
          ).body.items;
        const keyEvents = await events(`api-keys/${minted.body.id}`);
        expect(keyEvents.map((event) => event.type)).toEqual([
          "admin.api_key_revoked",
          "admin.api_key_created",
        ]);
        expect(keyEvents[1]?.data.actor).toEqual({ sub: "lifecycle-admin", via: "jwt" });
        const [funded] = await events(customerId);
        expect(funded).toMatchObject({
          type: "admin.account_set",
          data: {
            actor: { sub: customerId, via: "api-key", apiKeyId: minted.body.id },
            requestId: set.headers.get("x-request-id"),
            change: { balanceCentsBefore: 0, balanceCentsAfter: 4_200 },
          },
        });
        expect(JSON.stringify([...keyEvents, funded])).not.toContain(minted.body.key);
      },
      timeoutMs,
    );

    test(
      "a refused credential is a security event in the activity log (security.auth_failed), with its request id",
      async () => {
        const api = client();
        const refused = await fetch(`${api.target.base}/v1/inventory/${uniqueName("guarded")}`, {
          headers: { authorization: "Bearer forged.token.value" },
        });
        expect(refused.status).toBe(401);
        const requestId = refused.headers.get("x-request-id");
        expect(requestId).toBeTruthy();
        await eventually(
          async () => {
            const page = await api.call<{ items: Array<{ type: string; data: { requestId?: string } }> }>(
              "GET",
              "/v1/activity?type=security.auth_failed&limit=100",
            );
            return page.body.items.some(
              (event) => event.type === "security.auth_failed" && event.data.requestId === requestId,
            );
          },
          "the refusal in the activity log",
          5_000,
        );
      },
      timeoutMs,
    );

    test(
      "outbound webhooks: signed per Standard Webhooks, a rotated secret overlaps the old one, attempts are logged",
      async () => {
        const api = client();
        const receiver = startReceiver();
        try {
          const created = await api.call<{ id: string; secret: string }>(
            "POST",
            "/v1/webhooks/subscriptions",
            {
              body: { url: receiver.url("/lifecycle-hooks"), events: ["order.confirmed"] },
            },
          );
          expect(created.status).toBe(201);
          const { id, secret } = created.body;
          const [sku, customer] = [uniqueName("hooked"), uniqueName("hookee")];
          await api.putSku(sku, 10, 300);
          await api.putAccount(customer, 10_000);
          /** Confirms an order and returns its webhook as the receiver got it. */
          const confirmedHook = async () => {
            const placed = await api.place(customer, [{ sku, quantity: 1 }]);
            const { orderId } = await api.settle(placed.body.orderId);
            const arrived = () => receiver.deliveries.find((delivery) => delivery.body.includes(orderId));
            await eventually(() => arrived() !== undefined, "the order.confirmed webhook");
            return arrived() as Delivery;
          };
          const verifiesWith = (key: string, hook: Delivery) => {
            try {
              return (new Webhook(key).verify(hook.body, hook.headers) as { type: string }).type;
            } catch {
              return "refused";
            }
          };

          const first = await confirmedHook();
          expect(verifiesWith(secret, first)).toBe("order.confirmed");

          const rotated = await api.call<{ secret: string; previousSecretExpiresAt: string | null }>(
            "POST",
            `/v1/webhooks/subscriptions/${id}/rotate-secret`,
            { body: { overlapSeconds: 600 } },
          );
          expect(rotated.status).toBe(200);
          expect(rotated.body.secret).not.toBe(secret);
          const second = await confirmedHook();
          expect([verifiesWith(secret, second), verifiesWith(rotated.body.secret, second)]).toEqual([
            "order.confirmed",
            "order.confirmed",
          ]);

          // The node records an attempt once the receiver has answered, after the receiver saw it: wait for both.
          const readAttempts = () =>
            api.call<{ items: Array<{ eventId: string; outcome: string }> }>(
              "GET",
              `/v1/webhooks/subscriptions/${id}/attempts`,
            );
          let attempts = await readAttempts();
          await eventually(async () => {
            attempts = await readAttempts();
            return attempts.body.items.length >= 2;
          }, "both attempts recorded");
          expect(attempts.body.items.slice(0, 2)).toEqual([
            expect.objectContaining({ eventId: second.headers["webhook-id"], outcome: "delivered" }),
            expect.objectContaining({ eventId: first.headers["webhook-id"], outcome: "delivered" }),
          ]);
          const listed = await api.call<{ items: Array<{ id: string }> }>(
            "GET",
            "/v1/webhooks/subscriptions?limit=100",
          );
          expect(listed.body.items.map((item) => item.id)).toContain(id);
          expect(JSON.stringify(listed.body)).not.toContain("whsec_");
          expect((await api.call("DELETE", `/v1/webhooks/subscriptions/${id}`)).status).toBe(204);
        } finally {
          receiver.stop();
        }
      },
      timeoutMs,
    );

    idsCases(client, timeoutMs);
  });
}
