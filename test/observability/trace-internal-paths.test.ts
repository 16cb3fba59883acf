// An outsider's sampled traceparent on `/_edgewise/*` passes the sampling policy; only an actor host's routes follow it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeSampling, sampleWrites } from "../../shared/telemetry/trace/sampling.ts";
import { type CommerceNode, startCommerceNode } from "../commerce/bun-node.ts";
import { hex } from "./saga-trace.ts";

let running: CommerceNode;
const policy = writeSampling();
beforeAll(async () => {
  running = await startCommerceNode("trace_internal_paths");
}, 30_000);
afterAll(async () => {
  sampleWrites(policy);
  await running?.stop();
});

test("requests to /_edgewise/* paths with a sampled traceparent are recorded only as the policy says", async () => {
  const tracing = running.node.tracing;
  if (!tracing) throw new Error("tracing is off");
  // No write that starts a trace or comes from outside is recorded.
  sampleWrites({ ratio: 0 });
  const traceIds: string[] = [];
  try {
    // A node that is no actor host: these are 404s (its delivery endpoint makes no SERVER span), which anyone may
    // send. Before, each was recorded, whatever the policy: 30 requests, 30 traces in the store.
    for (const path of ["/_edgewise/actors/ask", "/_edgewise/actors/ping", "/_edgewise/anything"]) {
      for (let i = 0; i < 10; i++) {
        const traceId = hex(16);
        traceIds.push(traceId);
        const response = await fetch(`${running.node.url}${path}`, {
          method: "POST",
          body: "{}",
          headers: { traceparent: `00-${traceId}-${hex(8)}-01` },
        });
        expect(response.status).toBe(404);
        await response.arrayBuffer();
      }
    }
  } finally {
    sampleWrites(policy);
  }
  await tracing.flush();
  expect(traceIds.filter((traceId) => tracing.store.trace(traceId).length > 0)).toEqual([]);
}, 60_000);
