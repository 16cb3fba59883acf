import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../actors/examples/counter.ts";
import { LocalActorHost } from "../actors/hosts/local/index.ts";
import { openBunSqlite } from "../actors/hosts/local/sqlite-bun.ts";
import { createApp } from "./app.ts";

const host = new LocalActorHost({
  actors: [counterActor],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-app-")), "actors.db")),
});
const app = createApp({ actors: host });
afterAll(() => host.stop());

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  app.request(path, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });

describe("gateway app (in process)", () => {
  test("GET /healthz answers 200", async () => {
    const response = await app.request("/healthz");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  test("an increment is durable, and an Idempotency-Key makes a retry return the same reply", async () => {
    expect(await (await post("/v1/counters/a/increment", '{"by":2}')).json()).toEqual({ count: 2 });
    const first = await (
      await post("/v1/counters/a/increment", '{"by":5}', { "idempotency-key": "k1" })
    ).json();
    const retry = await (
      await post("/v1/counters/a/increment", '{"by":5}', { "idempotency-key": "k1" })
    ).json();
    expect(first).toEqual({ count: 7 });
    expect(retry).toEqual({ count: 7 });
    expect(host.inspect({ type: "counter", key: "a" }).state).toEqual({ count: 7 });
  });

  test("bad input gets problem+json and changes nothing", async () => {
    const rows: Array<[string, string, number, string]> = [
      ["/v1/counters/b/increment", "{not json", 400, "request.invalid"],
      ["/v1/counters/b/increment", '{"by":"x"}', 400, "request.invalid"],
      ["/v1/counters/b/increment", '{"by":1,"extra":true}', 400, "request.invalid"],
      ["/v1/counters/b%20c/increment", "{}", 400, "actor.invalid_key"],
    ];
    for (const [path, body, status, code] of rows) {
      const response = await post(path, body);
      expect(response.status).toBe(status);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect(((await response.json()) as { code: string }).code).toBe(code);
    }
    expect(host.inspect({ type: "counter", key: "b" }).state).toBeUndefined();
  });
});
