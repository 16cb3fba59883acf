// Unusual ids through the whole order lifecycle (part of every lifecycle suite): each one the API takes comes back
// exactly on every read path and is found by search; each one it cannot carry is refused up front.
import { expect, test } from "bun:test";
import { type CommerceClient, eventually, type OrderView, uniqueName } from "./client.ts";

type Page<T> = { items: T[] };

export function idsCases(client: () => CommerceClient, timeoutMs: number) {
  test(
    "customers named with unicode, slashes, percent signs, spaces and case twins: exact on every read path",
    async () => {
      const api = client();
      const sku = uniqueName("lamp");
      const tag = uniqueName("").slice(1);
      const customers = [
        `café-${tag}`.normalize("NFD"), // decomposed: its composed twin is another customer
        "😀🎉", // nothing the text search's parser keeps: found as a whole
        `日本/${tag}%2F..?#+`,
        ` lead ${tag} `,
        `ALICE-${tag}`,
        `alice-${tag}`, // the upper-case twin's lower case: its own account and points
      ];
      await api.putSku(sku, 100, 1_000);
      await Promise.all(
        customers.map(async (customerId, n) => {
          const as = {
            sub: customerId,
            scopes: ["orders:read", "orders:write", "billing:read", "loyalty:read"],
          };
          const path = encodeURIComponent(customerId);
          await api.putAccount(customerId, 10_000 + n);
          const placed = await api.call<{ orderId: string }>("POST", "/v1/orders", {
            as,
            body: { customerId, items: [{ sku, quantity: 1 }] },
          });
          expect(placed.status).toBe(202);
          const order = await api.settle(placed.body.orderId);
          expect(order).toMatchObject({ status: "confirmed", customerId });
          expect((await api.call("GET", `/v1/accounts/${path}`, { as })).body).toEqual({
            customerId,
            balanceCents: 9_000 + n,
          });
          await eventually(
            async () => {
              const points = await api.call("GET", `/v1/customers/${path}/loyalty`, { as });
              return JSON.stringify(points.body) === JSON.stringify({ customerId, points: 10 });
            },
            `loyalty points of ${JSON.stringify(customerId)}`,
          );
          const lists = [
            `/v1/orders?${new URLSearchParams({ customerId })}`,
            `/v1/orders?${new URLSearchParams({ q: customerId })}`,
            "/v1/orders",
          ];
          for (const list of lists) {
            await eventually(
              async () => {
                const page = await api.call<Page<OrderView>>(
                  "GET",
                  list,
                  list === "/v1/orders" ? { as } : {},
                );
                return page.body.items.some(
                  (item) => item.orderId === order.orderId && item.customerId === customerId,
                );
              },
              `${list} to list the order of ${JSON.stringify(customerId)}`,
            );
          }
          await eventually(
            async () => {
              const page = await api.call<Page<{ type: string; data: { orderId?: string } }>>(
                "GET",
                `/v1/activity?${new URLSearchParams({ subject: customerId })}`,
              );
              return page.body.items.some(
                (item) => item.type === "OrderConfirmed" && item.data.orderId === order.orderId,
              );
            },
            `the activity log to name ${JSON.stringify(customerId)}`,
          );
        }),
      );
      // The composed twin of the decomposed customer was never funded: no account of its own, none shared.
      const twin = encodeURIComponent((customers[0] as string).normalize("NFC"));
      expect((await api.call("GET", `/v1/accounts/${twin}`)).status).toBe(404);
    },
    timeoutMs,
  );

  test(
    "skus the text search's parser drops or splits are found by ?q=",
    async () => {
      const api = client();
      const customerId = uniqueName("ivy");
      // `~lamp…` is read as `lamp…` inside the search text but `~lamp…` alone; `---` has no word at all.
      const skus = [`~${uniqueName("lamp")}`, "---"];
      await api.putAccount(customerId, 10_000);
      for (const sku of skus) await api.putSku(sku, 100, 100);
      const placed = await api.place(customerId, [
        { sku: skus[0] as string, quantity: 1 },
        { sku: "---", quantity: 1 },
      ]);
      const order = await api.settle(placed.body.orderId);
      expect(order.items.map((line) => line.sku).sort()).toEqual([...skus].sort());
      for (const sku of skus) {
        expect((await api.sku(sku)).sku).toBe(sku);
        await eventually(async () => {
          const page = await api.call<Page<OrderView>>(
            "GET",
            `/v1/orders?${new URLSearchParams({ q: sku })}`,
          );
          return page.body.items.some((item) => item.orderId === order.orderId);
        }, `?q=${sku} to find the order`);
      }
    },
    timeoutMs,
  );

  test(
    "ids no path or store can carry are refused up front with a problem, and nothing changes",
    async () => {
      const api = client();
      const sku = uniqueName("vase");
      await api.putSku(sku, 5, 100);
      const refusals = [
        // No URL path can name these: their account could never be set.
        [".", "customerId", "must not be '.' or '..' (no URL path can carry them)"],
        ["..", "customerId", "must not be '.' or '..' (no URL path can carry them)"],
        // Half a surrogate pair: no UTF-8 form, so every store would write U+FFFD in its place.
        ["x\ud800", "customerId", "must be well-formed Unicode (a \\u escape names half a surrogate pair)"],
        ["e".repeat(129), "customerId", "must be at most 128 characters"],
        ["system:funding", "customerId", "must not start with 'system:'"],
      ] as const;
      for (const [customerId, path, message] of refusals) {
        const refused = await api.call<{ errors: Array<{ path: string; message: string }> }>(
          "POST",
          "/v1/orders",
          {
            body: { customerId, items: [{ sku, quantity: 1 }] },
          },
        );
        expect(refused.status).toBe(400);
        expect(refused.headers.get("content-type")).toBe("application/problem+json");
        expect(refused.body.errors).toContainEqual({ path, message });
      }
      for (const bad of ["café", "a/b", "a b", "..", "s".repeat(129)]) {
        const refused = await api.call("PUT", `/v1/inventory/${encodeURIComponent(bad)}`, {
          body: { available: 1, priceCents: 1 },
        });
        expect([400, 404]).toContain(refused.status); // `..` is a dot segment: no sku route at all
        expect(refused.headers.get("content-type")).toBe("application/problem+json");
      }
      expect(await api.sku(sku)).toMatchObject({ available: 5, reserved: 0, sold: 0 });
    },
    timeoutMs,
  );
}
