// headContentLength: HEAD gets its GET's Content-Length on the wire, in bytes; an event stream is left alone.
import { afterAll, expect, test } from "bun:test";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { headContentLength } from "./index.ts";

const app = new Hono();
app.use(headContentLength());
app.get("/order", (c) => c.json({ id: "ord_1", note: "crème brûlée ☕" }));
app.get("/empty", (c) => c.body(null, 204));
app.get("/live", (c) =>
  streamSSE(c, async (stream) => {
    // Never ends by itself, like the console's live stream.
    await new Promise<void>((resolve) => stream.onAbort(resolve));
  }),
);
const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch });
afterAll(() => server.stop(true));
const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;

test("over HTTP, HEAD answers with the byte length of the GET's body, and no body", async () => {
  const get = await fetch(url("/order"));
  const bytes = (await get.arrayBuffer()).byteLength;
  expect(bytes).toBeGreaterThan(JSON.stringify({ id: "ord_1", note: "crème brûlée ☕" }).length);
  const head = await fetch(url("/order"), { method: "HEAD" });
  expect(head.status).toBe(200);
  expect(head.headers.get("content-length")).toBe(String(bytes));
  expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
  expect((await head.arrayBuffer()).byteLength).toBe(0);
});

test("a route's 404 and a body-less answer keep their own lengths", async () => {
  const missing = await app.request("/missing", { method: "HEAD" });
  expect(missing.status).toBe(404);
  const get = await app.request("/missing");
  expect(missing.headers.get("content-length")).toBe(String((await get.arrayBuffer()).byteLength));
  const empty = await app.request("/empty", { method: "HEAD" });
  expect(empty.status).toBe(204);
  expect(empty.headers.get("content-length")).toBeNull();
});

test("HEAD on an event stream answers at once, without a length", async () => {
  const controller = new AbortController();
  const started = performance.now();
  const head = await fetch(url("/live"), { method: "HEAD", signal: controller.signal });
  expect(performance.now() - started).toBeLessThan(2_000);
  expect(head.headers.get("content-type")).toStartWith("text/event-stream");
  expect(head.headers.get("content-length")).not.toBe("0");
  controller.abort();
});

test("GET and other methods pass through untouched", async () => {
  const get = await app.request("/order");
  expect(get.headers.get("content-length")).toBeNull();
  expect(await get.json()).toEqual({ id: "ord_1", note: "crème brûlée ☕" });
});
