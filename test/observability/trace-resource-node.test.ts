// A node's exported spans describe their service as its metrics do: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");
const bodies: string[] = [];
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(request) {
    if (request.method === "POST" && new URL(request.url).pathname === "/v1/traces")
      bodies.push(await request.text());
    return Response.json({});
  },
});
afterAll(() => receiver.stop(true));

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string };
}

test("spans exported over OTLP carry OTEL_RESOURCE_ATTRIBUTES, and service.name stays OTEL_SERVICE_NAME's", async () => {
  // The tracer provider is process-wide, so the node's own installTracing runs in a process of its own.
  const script = `
    import { installTracing } from "./deploy/tracing.ts";
    const { provider } = installTracing();
    provider.getTracer("resource-test").startSpan("one span").end();
    await provider.forceFlush();
  `;
  const child = Bun.spawn([process.execPath, "-e", script], {
    cwd: root,
    env: {
      ...process.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_SERVICE_NAME: "shop-gateway",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=staging,service.name=ignored,team=payments%20core",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(await child.exited).toBe(0);
  expect(bodies.length).toBeGreaterThan(0);
  const resources = bodies.flatMap(
    (body) =>
      (JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: OtlpAttribute[] } }> })
        .resourceSpans,
  );
  expect(resources.length).toBeGreaterThan(0);
  for (const { resource } of resources) {
    const attributes = Object.fromEntries(resource.attributes.map((a) => [a.key, a.value.stringValue]));
    expect(attributes).toMatchObject({
      "service.name": "shop-gateway",
      "deployment.environment": "staging",
      team: "payments core",
    });
  }
});
