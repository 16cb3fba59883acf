// Unit tests for the API key routes on the in-memory store: authorization before validation, and the cache hook.
import { describe, expect, test } from "bun:test";
import { bearer, SECRET, testGateway } from "../../test/auth/helpers.ts";
import { MemoryApiKeyStore } from "../middleware/auth/api-key-store.ts";
import { issueToken } from "../middleware/auth/tokens.ts";
import { apiKeyRoutes } from "./api-keys.ts";

async function setup() {
  const store = new MemoryApiKeyStore();
  const forgotten: string[] = [];
  const gateway = testGateway({ secret: SECRET }, (app) =>
    app.route("/", apiKeyRoutes({ store, cache: { forget: (id) => forgotten.push(id) } })),
  );
  const as = async (scopes: string[]) =>
    bearer(await issueToken({ sub: "op", scopes, ttlSeconds: 60, secret: SECRET }));
  const post = async (headers: Record<string, string>, body: string) =>
    gateway.app.request("/v1/api-keys", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    });
  return { store, forgotten, gateway, as, post };
}

describe("API key routes", () => {
  test("authorization is checked before the body: a non-admin with a bad body gets 403, not 400", async () => {
    const { as, post } = await setup();
    expect((await post(await as(["orders:write"]), "{")).status).toBe(403);
    expect((await post({}, "{")).status).toBe(401);
  });

  test("201 stores sub, deduplicated scopes and name; the response holds only id and key", async () => {
    const { store, as, post } = await setup();
    const response = await post(
      await as(["admin"]),
      JSON.stringify({ sub: "svc", scopes: ["orders:read", "orders:read"], name: "ci" }),
    );
    expect(response.status).toBe(201);
    const body = await response.json();
    expect(Object.keys(body).sort()).toEqual(["id", "key"]);
    const [summary] = await store.list();
    expect(summary).toMatchObject({
      id: body.id,
      sub: "svc",
      scopes: ["orders:read"],
      name: "ci",
      revokedAt: null,
    });
  });

  test("scopes must be known; the problem names each bad path", async () => {
    const { as, post } = await setup();
    const response = await post(
      await as(["admin"]),
      JSON.stringify({ sub: 1, scopes: ["admin", "superuser"], name: 3 }),
    );
    const problem = await response.json();
    expect(response.status).toBe(400);
    expect(problem.errors.map((issue: { path: string }) => issue.path).sort()).toEqual([
      "name",
      "scopes.1",
      "sub",
    ]);
  });

  test("a sub or name with control characters is 400 (a NUL would reach Postgres, which refuses it)", async () => {
    const { store, as, post } = await setup();
    for (const body of [
      { sub: "svc\u0000", scopes: ["orders:read"] },
      { sub: "svc", scopes: ["orders:read"], name: "ci\u0000" },
      { sub: "svc\nadmin", scopes: ["orders:read"] },
    ]) {
      const response = await post(await as(["admin"]), JSON.stringify(body));
      expect(response.status).toBe(400);
    }
    expect(await store.list()).toEqual([]);
  });

  test("DELETE tells this node's cache to forget the id", async () => {
    const { as, post, forgotten, gateway } = await setup();
    const admin = await as(["admin"]);
    const { id } = await (await post(admin, JSON.stringify({ sub: "svc", scopes: ["orders:read"] }))).json();
    expect(
      (await gateway.app.request(`/v1/api-keys/${id}`, { method: "DELETE", headers: admin })).status,
    ).toBe(204);
    expect(forgotten).toEqual([id]);
    expect(
      (await gateway.app.request("/v1/api-keys/zzzzzzzzzzzzzzzz", { method: "DELETE", headers: admin }))
        .status,
    ).toBe(404);
    expect(forgotten).toEqual([id]);
  });

  test("DELETE with a malformed id is 400 problem+json naming `id`, as on every route's path ids; after authorization", async () => {
    const { as, store, gateway } = await setup();
    const admin = await as(["admin"]);
    const remove = async (id: string, headers: Record<string, string>) =>
      gateway.app.request(`/v1/api-keys/${id}`, { method: "DELETE", headers });
    for (const id of ["%C3%A9", "a%20b", "a!b", "x".repeat(129)]) {
      const response = await remove(id, admin);
      expect(response.status).toBe(400);
      expect(response.headers.get("content-type")).toContain("application/problem+json");
      expect((await response.json()).errors.map((issue: { path: string }) => issue.path)).toEqual(["id"]);
    }
    // A non-admin learns nothing from the id's shape; a URL-safe id that names no key is still 404.
    expect((await remove("a%20b", await as(["orders:read"]))).status).toBe(403);
    expect((await remove("not-an-id", admin)).status).toBe(404);
    expect(await store.list()).toEqual([]);
  });
});
