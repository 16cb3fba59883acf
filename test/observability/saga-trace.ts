// What one order's trace shows on every host: the gateway's SERVER span, and the actor turns under it with their attributes.
import { expect } from "bun:test";
import { type CommerceClient, uniqueName } from "../commerce/client.ts";

export const hex = (bytes: number) =>
  [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");

/** Places one order under a caller's sampled `traceparent` (a fresh trace id) and waits until it is confirmed. */
export async function placeTracedOrder(
  api: CommerceClient,
): Promise<{ traceId: string; callerSpanId: string }> {
  const [apple, alice] = [uniqueName("apple"), uniqueName("alice")];
  await api.putSku(apple, 10, 250);
  await api.putAccount(alice, 10_000);
  const traceId = hex(16);
  const callerSpanId = hex(8);
  const placed = await api.place(alice, [{ sku: apple, quantity: 2 }], {
    traceparent: `00-${traceId}-${callerSpanId}-01`,
  });
  expect(placed.status).toBe(202);
  expect((await api.settle(placed.body.orderId)).status).toBe("confirmed");
  return { traceId, callerSpanId };
}

/** A span as a test reads it back, from the embedded store or from an OTLP receiver. */
export interface TraceSpan {
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** `SERVER`, `CONSUMER`, … (OTLP's numbers map through `kindName`). */
  kind: string;
  attributes: Record<string, unknown>;
}

/** OTLP's span kind numbers, as the SDK names them. */
export function kindName(kind: number): string {
  return ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"][kind] ?? String(kind);
}

/**
 * The gateway's SERVER span continues the caller's traceparent and names the route; at least four turns (order and
 * inventory) carry the actor, message and timing attributes; the order's first turn is the request's child.
 */
export function expectGatewayAndTurns<S extends TraceSpan>(
  spans: S[],
  callerSpanId: string,
): { server: S; turns: S[] } {
  const server = spans.find(
    (span) => span.kind === "SERVER" && span.attributes["http.route"] === "/v1/orders",
  );
  expect(server).toBeDefined();
  expect(server?.parentSpanId).toBe(callerSpanId);
  expect(server?.attributes["http.response.status_code"]).toBe(202);

  const turns = spans.filter((span) => span.name.startsWith("turn "));
  const types = new Set(turns.map((span) => span.attributes["edgewise.actor.type"]));
  expect(turns.length).toBeGreaterThanOrEqual(4);
  expect(types.has("order") && types.has("inventory")).toBe(true);
  for (const turn of turns) {
    expect(typeof turn.attributes["edgewise.actor.key"]).toBe("string");
    expect(typeof turn.attributes["edgewise.message.type"]).toBe("string");
    expect(typeof turn.attributes["messaging.message.id"]).toBe("string");
    expect(typeof turn.attributes["edgewise.queue_time_ms"]).toBe("number");
  }
  expect(turns.some((turn) => typeof turn.attributes["edgewise.storage.commit_ms"] === "number")).toBe(true);
  const firstOrderTurn = turns.find((span) => span.parentSpanId === server?.spanId);
  expect(firstOrderTurn?.attributes["edgewise.actor.type"]).toBe("order");
  return { server: server as S, turns };
}
