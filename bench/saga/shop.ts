// Shared by bench/saga and bench/soak: the seeded shop, the order mix, confirmations by webhook, percentiles.
import { type Api, pool, seededRandom } from "../../deploy/demo/support.ts";

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export function percentiles(values: number[]) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length);
  return {
    n: sorted.length,
    mean: round(mean),
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    max: round(sorted.at(-1) ?? 0),
  };
}

/** Units each sku is stocked with, and cents each account is funded with: no order ever runs short. */
export const SHOP_STOCK = 1_000_000_000;
export const SHOP_BALANCE = 1_000_000_000_000;

export interface Shop {
  skus: Array<{ sku: string; priceCents: number }>;
  customers: string[];
}

/** Stocks `skuCount` skus (`s<i>`) and funds `customerCount` accounts (`c<i>`) through the API, 16 at a time. */
export async function seedShop(api: Api, skuCount: number, customerCount: number): Promise<Shop> {
  const skus = Array.from({ length: skuCount }, (_, i) => ({
    sku: `s${i}`,
    priceCents: 100 + ((i * 37) % 4900),
  }));
  const customers = Array.from({ length: customerCount }, (_, i) => `c${i}`);
  await pool(skus, 16, (s) => api.putInventory(s.sku, SHOP_STOCK, s.priceCents));
  await pool(customers, 16, (c) => api.putAccount(c, SHOP_BALANCE));
  return { skus, customers };
}

/** The order mix: 1-3 distinct skus out of all, 1-2 units each, a random customer; the same on every run. */
export function orderMix(shop: Shop, seed = 11) {
  const next = seededRandom(seed);
  return () => {
    const lines = 1 + Math.floor(next() * 3);
    const chosen = new Set<string>();
    while (chosen.size < lines)
      chosen.add((shop.skus[Math.floor(next() * shop.skus.length)] as { sku: string }).sku);
    return {
      customerId: shop.customers[Math.floor(next() * shop.customers.length)] as string,
      items: [...chosen].map((sku) => ({ sku, quantity: 1 + Math.floor(next() * 2) })),
    };
  };
}

/** Confirmations as they are seen (the order.confirmed webhook, or another signal), and waiters for them. */
export class Confirmations {
  private readonly seen = new Map<string, { at: number; failed?: string }>();
  private readonly waiters = new Map<string, (value: { at: number; failed?: string }) => void>();
  duplicates = 0;

  settle(orderId: string, at: number, failed?: string): void {
    if (this.seen.has(orderId)) {
      this.duplicates++;
      return;
    }
    const value = failed === undefined ? { at } : { at, failed };
    this.seen.set(orderId, value);
    const waiter = this.waiters.get(orderId);
    if (waiter) {
      this.waiters.delete(orderId);
      waiter(value);
    }
  }

  wait(orderId: string, timeoutMs: number): Promise<{ at: number; failed?: string } | undefined> {
    const seen = this.seen.get(orderId);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(orderId);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(orderId, (value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }
}

/** A receiver on 127.0.0.1 for the order.* webhooks that settles `confirmations`; subscribe it with `url`. */
export function webhookReceiver(confirmations: Confirmations) {
  let requests = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const at = performance.now();
      requests++;
      const event = (await request.json()) as { type?: string; data?: { orderId?: string } };
      const orderId = event.data?.orderId;
      if (typeof orderId === "string") {
        if (event.type === "order.confirmed") confirmations.settle(orderId, at);
        else confirmations.settle(orderId, at, event.type);
      }
      return new Response(null, { status: 204 });
    },
  });
  const url = `http://127.0.0.1:${server.port}/hook`;
  return {
    url,
    requests: () => requests,
    subscribe: (api: Api) =>
      api.call(
        "POST",
        "/v1/webhooks/subscriptions",
        {
          url,
          events: ["order.confirmed", "order.rejected", "order.cancelled"],
        },
        [201],
      ),
    stop: () => server.stop(true),
  };
}
