// A client's long `tracestate` on a node: its order still settles, and no message the order sends is refused for it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";

const lines: string[] = [];
let running: CommerceNode;
beforeAll(async () => {
  // Tracing on (the default): the request's span carries the caller's trace context into every message.
  running = await startCommerceNode("tracestate_node", {}, { log: (line) => lines.push(line) });
}, 30_000);
afterAll(() => running?.stop());

test("an order placed with a tracestate past 512 characters settles, as one with a short one does", async () => {
  const api = running.client;
  await api.putSku("ts-sku", 10, 100);
  await api.putAccount("ts-alice", 10_000);
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  // Before, the header was carried as it came into each envelope, which holds at most 512 characters: every
  // message of the saga was refused as envelope.invalid (dead-lettered), and the order stayed pending for good.
  for (const tracestate of [`congo=${"t".repeat(100)}`, `congo=t61rcWkgMzE,rojo=${"x".repeat(600)}`]) {
    const placed = await api.place("ts-alice", [{ sku: "ts-sku", quantity: 1 }], { traceparent, tracestate });
    expect(placed.status).toBe(202);
    expect((await api.settle(placed.body.orderId, undefined, 15_000)).status).toBe("confirmed");
  }
  expect(lines.filter((line) => line.includes("envelope.invalid"))).toEqual([]);
}, 40_000);
