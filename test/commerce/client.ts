// A small HTTP client for the commerce API (API.md), used by the end-to-end suites on every host.
import { issueToken } from "../../edge/middleware/auth/tokens.ts";

export interface CommerceTarget {
  /** The gateway's base URL, e.g. http://127.0.0.1:8787. */
  base: string;
  /** The JWT_SECRET the gateway verifies with. */
  jwtSecret: string;
}

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export interface OrderView {
  orderId: string;
  customerId: string;
  status: "pending" | "confirmed" | "rejected" | "cancelled";
  items: Array<{ sku: string; quantity: number; unitPriceCents?: number }>;
  totalCents?: number;
  reason?: string;
  refundedAt?: string;
  createdAt: string;
  updatedAt: string;
}

export class CommerceClient {
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(readonly target: CommerceTarget) {}

  /** A JWT for `sub` with `scopes` (`admin` by default), cached per (sub, scopes). */
  token(sub = "admin", scopes: readonly string[] = ["admin"]): Promise<string> {
    const key = `${sub}|${scopes.join(" ")}`;
    let token = this.tokens.get(key);
    if (!token) {
      token = issueToken({ sub, scopes, ttlSeconds: 3_600, secret: this.target.jwtSecret });
      this.tokens.set(key, token);
    }
    return token;
  }

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: {
      body?: unknown;
      as?: { sub: string; scopes: readonly string[] };
      headers?: Record<string, string>;
    } = {},
  ): Promise<Reply<T>> {
    const token = await this.token(options.as?.sub, options.as?.scopes);
    const response = await fetch(`${this.target.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
        ...options.headers,
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as T, headers: response.headers };
  }

  async putSku(sku: string, available: number, priceCents: number) {
    return expectOk(await this.call("PUT", `/v1/inventory/${sku}`, { body: { available, priceCents } }));
  }

  async sku(sku: string) {
    return expectOk(
      await this.call<{ sku: string; available: number; reserved: number; sold: number; priceCents: number }>(
        "GET",
        `/v1/inventory/${sku}`,
      ),
    );
  }

  async putAccount(customerId: string, balanceCents: number) {
    return expectOk(
      await this.call("PUT", `/v1/accounts/${encodeURIComponent(customerId)}`, { body: { balanceCents } }),
    );
  }

  async balance(customerId: string): Promise<number> {
    return expectOk(
      await this.call<{ balanceCents: number }>("GET", `/v1/accounts/${encodeURIComponent(customerId)}`),
    ).balanceCents;
  }

  async points(customerId: string): Promise<number> {
    return expectOk(
      await this.call<{ points: number }>("GET", `/v1/customers/${encodeURIComponent(customerId)}/loyalty`),
    ).points;
  }

  async place(
    customerId: string,
    items: Array<{ sku: string; quantity: number }>,
    headers: Record<string, string> = {},
  ): Promise<Reply<{ orderId: string; status: string }>> {
    return this.call("POST", "/v1/orders", { body: { customerId, items }, headers });
  }

  async order(orderId: string): Promise<OrderView> {
    return expectOk(await this.call<OrderView>("GET", `/v1/orders/${orderId}`));
  }

  async cancel(orderId: string) {
    return this.call("POST", `/v1/orders/${orderId}/cancel`);
  }

  /** Polls the order until `done` says so (default: a terminal status). */
  async settle(
    orderId: string,
    done: (order: OrderView) => boolean = (order) => order.status !== "pending",
    timeoutMs = 20_000,
  ): Promise<OrderView> {
    const deadline = Date.now() + timeoutMs;
    let last: OrderView | undefined;
    while (Date.now() < deadline) {
      last = await this.order(orderId);
      if (done(last)) return last;
      await Bun.sleep(25);
    }
    throw new Error(`order ${orderId} did not settle in ${timeoutMs} ms: ${JSON.stringify(last)}`);
  }
}

export function expectOk<T>(reply: Reply<T>): T {
  if (reply.status < 200 || reply.status > 299) {
    throw new Error(`HTTP ${reply.status}: ${JSON.stringify(reply.body)}`);
  }
  return reply.body;
}

/** Polls until `check` holds, or fails with `what`. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await Bun.sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Names unique to one run, so suites can share a database. */
export const uniqueName = (prefix: string) =>
  `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
