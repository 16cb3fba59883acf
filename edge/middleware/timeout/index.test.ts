// timeout: a request's body must arrive by the request's deadline; a body the runtime fails to deliver is the client's fault.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import type { GatewayEnv } from "../../env.ts";
import { errorHandler } from "../../errors.ts";
import { bodyLimit } from "../body-limit/index.ts";
import { timeout } from "./index.ts";

function app(ms: number) {
  const gateway = new Hono<GatewayEnv>();
  gateway.onError(errorHandler({ report: () => {} }));
  gateway.use(timeout({ ms }));
  gateway.use(bodyLimit());
  gateway.post("/echo", async (c) => c.json(await c.req.json()));
  return gateway;
}

/** A body that sends its first bytes, then `then` (nothing, for a body that never ends). */
function body(first: string, then?: (controller: ReadableStreamDefaultController<Uint8Array>) => void) {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(first));
      then?.(controller);
    },
  });
}

const post = (stream: ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
  new Request("http://edgewise.test/echo", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: stream,
    duplex: "half",
  } as RequestInit);

test("a body still arriving at the deadline is answered 504 with Connection: close", async () => {
  const started = Date.now();
  for (const headers of [{ "content-length": "1000" }, {}] as Array<Record<string, string>>) {
    const answer = await app(200).request(post(body('{"a":'), headers));
    expect(answer.status).toBe(504);
    expect(answer.headers.get("connection")).toBe("close");
    expect(((await answer.json()) as { code: string }).code).toBe("timeout");
  }
  expect(Date.now() - started).toBeLessThan(2_000);
}, 5_000);

test("a body the runtime fails to deliver (the client hung up) is a 400, not a 500", async () => {
  const answer = await app(5_000).request(
    post(
      body('{"a":', (controller) => setTimeout(() => controller.error(new Error("connection closed")), 20)),
      { "content-length": "1000" },
    ),
  );
  expect(answer.status).toBe(400);
  expect(((await answer.json()) as { code: string }).code).toBe("request.invalid");
  expect(answer.headers.get("connection")).toBeNull();
});

test("a whole body is read as sent, and the connection stays", async () => {
  const answer = await app(1_000).request(
    post(
      body('{"a":1}', (controller) => controller.close()),
      { "content-length": "7" },
    ),
  );
  expect(answer.status).toBe(200);
  expect(await answer.json()).toEqual({ a: 1 });
  expect(answer.headers.get("connection")).toBeNull();
});
