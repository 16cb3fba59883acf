// A node's stop sends the spans still in the OTLP exporter's batch: the last seconds before a restart are not lost.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");
const names: string[] = [];
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    if (request.method === "POST" && new URL(request.url).pathname === "/v1/traces") {
      const body = (await request.json()) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string }> }> }>;
      };
      for (const resource of body.resourceSpans)
        for (const scope of resource.scopeSpans) for (const span of scope.spans) names.push(span.name);
    }
    return Response.json({});
  },
});
afterAll(() => receiver.stop(true));

test("spans ended just before a node stops are exported by the stop, not dropped with the process", async () => {
  // The tracer provider is process-wide, so the node runs in a process of its own, which exits right after stop().
  const script = `
    import { startCommerceNode } from "./test/commerce/bun-node.ts";
    const running = await startCommerceNode("trace_export_stop");
    const answer = await running.client.putSku("stop-sku", 1, 100);
    if (answer.available !== 1) throw new Error("the write failed");
    await running.stop();
    process.exit(0);
  `;
  const child = Bun.spawn([process.execPath, "-e", script], {
    cwd: root,
    env: {
      ...process.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_METRICS_EXPORTER: "none",
      EDGEWISE_TRACE_SAMPLE_WRITES: "1",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const code = await child.exited;
  if (code !== 0) console.error(await new Response(child.stderr).text());
  expect(code).toBe(0);
  expect(names).toContain("PUT /v1/inventory/:sku");
  expect(names).toContain("turn inventory Put");
}, 30_000);
