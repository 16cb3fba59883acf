// Shared by `npm run demo` and bench/saga: a node on embedded defaults in a fresh temp dir, and a tiny API client.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../shared/config/index.ts";
import { type EdgewiseNode, startNode } from "../bun/node.ts";
import { referenceSystem } from "../reference.ts";

export interface EmbeddedNode {
  node: EdgewiseNode;
  url: string;
  token: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedNodeOptions {
  /** Extra configuration (strings, as in the environment). The process environment is not read. */
  env?: Record<string, string>;
  /** With `env.DATABASE_URL` (comparisons only): the node's tables go in this schema. */
  schema?: string;
  /** The system to run; default: the reference system of `npm start`. */
  system?: ReturnType<typeof referenceSystem>;
  log?: (line: string) => void;
}

/**
 * Starts the reference system on the embedded stack: PGlite, the embedded broker and the in-memory cache, all in
 * a fresh temp data dir, on 127.0.0.1 and a free port. The process environment is not read, so a DATABASE_URL
 * or REDIS_URL set for other work does not leak in; only `options.env` adds configuration.
 */
export async function startEmbeddedNode(options: EmbeddedNodeOptions = {}): Promise<EmbeddedNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "edgewise-demo-"));
  const config = parseConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    EDGEWISE_DATA_DIR: dataDir,
    ...options.env,
  });
  let node: EdgewiseNode;
  try {
    node = await startNode({
      config,
      ...(options.system ?? referenceSystem()),
      ...(options.schema ? { schema: options.schema } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  if (!node.adminToken) {
    // A JWKS-only configuration makes no HS256 key, so no admin token: stop what started before saying so.
    await node.stop().finally(() => rmSync(dataDir, { recursive: true, force: true }));
    throw new Error("the embedded node has no admin token (JWT_JWKS_URL without JWT_SECRET?)");
  }
  return {
    node,
    url: node.url,
    token: node.adminToken,
    dataDir,
    async stop() {
      try {
        await node.stop();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${typeof body === "string" ? body : JSON.stringify(body)}`);
  }
}

export interface Order {
  orderId: string;
  customerId: string;
  status: "pending" | "confirmed" | "rejected" | "cancelled";
  items: Array<{ sku: string; quantity: number; unitPriceCents?: number }>;
  totalCents?: number;
  reason?: "out_of_stock" | "insufficient_funds";
  createdAt: string;
  updatedAt: string;
}

/** The public HTTP API, with a bearer token. A 429, or a 503 with Retry-After, waits for it and tries again. */
export class Api {
  constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  async call<T>(method: string, path: string, body?: unknown, expect: number[] = [200]): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      // 429, and 503 with Retry-After (the node shedding new orders while its queue is behind: nothing was written).
      if (
        (response.status === 429 || (response.status === 503 && response.headers.has("retry-after"))) &&
        attempt < 20
      ) {
        await response.body?.cancel();
        const wait = Number(response.headers.get("retry-after") ?? "1");
        await Bun.sleep(Math.min(10, Math.max(0.05, wait)) * 1000);
        continue;
      }
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      if (!expect.includes(response.status)) throw new ApiError(response.status, parsed, `${method} ${path}`);
      return parsed as T;
    }
  }

  putInventory(sku: string, available: number, priceCents: number) {
    return this.call<{ sku: string; available: number; reserved: number; priceCents: number }>(
      "PUT",
      `/v1/inventory/${sku}`,
      { available, priceCents },
    );
  }

  getInventory(sku: string) {
    return this.call<{ sku: string; available: number; reserved: number; priceCents: number }>(
      "GET",
      `/v1/inventory/${sku}`,
    );
  }

  putAccount(customerId: string, balanceCents: number) {
    return this.call<{ customerId: string; balanceCents: number }>("PUT", `/v1/accounts/${customerId}`, {
      balanceCents,
    });
  }

  getAccount(customerId: string) {
    return this.call<{ customerId: string; balanceCents: number }>("GET", `/v1/accounts/${customerId}`);
  }

  getLoyalty(customerId: string) {
    return this.call<{ customerId: string; points: number }>("GET", `/v1/customers/${customerId}/loyalty`);
  }

  placeOrder(customerId: string, items: Array<{ sku: string; quantity: number }>) {
    return this.call<{ orderId: string; status: string }>("POST", "/v1/orders", { customerId, items }, [202]);
  }

  getOrder(orderId: string) {
    return this.call<Order>("GET", `/v1/orders/${orderId}`);
  }

  cancelOrder(orderId: string) {
    return this.call<{ orderId: string; status: string }>(
      "POST",
      `/v1/orders/${orderId}/cancel`,
      undefined,
      [202],
    );
  }
}

/** Runs `task` over `items`, at most `limit` at a time; results in input order. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
) {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await task(items[i] as T, i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** mulberry32: the same order mix on every run with the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
