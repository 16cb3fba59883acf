// The Worker as a gateway to a self-hosted actor host: every call leaves through the mtls_certificates binding.
import { afterAll, describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { SignJWT } from "jose";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { signingKey, startJwksServer } from "../../test/auth/helpers.ts";
import { Dependencies } from "../../shared/resilience/index.ts";
import { createApp } from "../app.ts";
import type { GatewayEnv } from "../env.ts";
import { gatewayFromEnv, remoteActorHostFromEnv } from "./cloudflare-gateway.ts";

const secret = "actor-host-secret-for-tests-0123456789";
const local = new LocalActorHost({
  actors: [counterActor],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-mtls-binding-")), "actors.db")),
});
afterAll(() => local.stop());
const actorNode = createApp({ actors: local, actorHost: { secret } });

describe("remote actors from a Worker", () => {
  test("no ACTOR_HOST_URL: the Worker keeps its Durable Objects", () => {
    expect(remoteActorHostFromEnv({})).toBeUndefined();
  });

  test("ACTOR_HOST_URL without the mTLS binding is refused at start, naming the fix", () => {
    expect(() =>
      remoteActorHostFromEnv({
        ACTOR_HOST_URL: "https://actors.example:9443",
        ACTOR_HOST_SECRET: secret,
      } as object),
    ).toThrow("needs the ACTOR_HOST_MTLS binding");
  });

  test("an http:// ACTOR_HOST_URL is refused: over plain HTTP the binding presents no certificate", () => {
    let called = false;
    const binding = {
      fetch: async () => {
        called = true;
        return Response.json({ ok: true, duplicate: false, reply: null });
      },
    };
    expect(() =>
      remoteActorHostFromEnv({
        ACTOR_HOST_URL: "http://actors.example:9443",
        ACTOR_HOST_SECRET: secret,
        ACTOR_HOST_MTLS: binding,
      }),
    ).toThrow("ACTOR_HOST_URL must be https://");
    expect(called).toBe(false);
  });

  test("asks go through the binding's fetch, signed, and reach the actor host", async () => {
    const seen: string[] = [];
    // The mtls_certificates binding is a Fetcher: workerd presents the certificate on the TLS connection.
    const binding = {
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        const request = new Request(input, init);
        seen.push(request.url);
        return actorNode.request(new URL(request.url).pathname, {
          method: request.method,
          headers: request.headers,
          body: init?.body ?? null,
        });
      },
    };
    const actors = remoteActorHostFromEnv({
      ACTOR_HOST_URL: "https://actors.example:9443",
      ACTOR_HOST_SECRET: secret,
      ACTOR_HOST_MTLS: binding,
    });
    if (!actors) throw new Error("expected a remote actor host");
    const gateway = createApp({ actors });
    const response = await gateway.request("/v1/counters/w1/increment", {
      method: "POST",
      body: '{"by":2}',
      headers: { "content-type": "application/json" },
    });
    expect(await response.json()).toEqual({ count: 2 });
    expect(seen).toEqual(["https://actors.example:9443/_edgewise/actors/ask"]);
    expect(local.inspect({ type: "counter", key: "w1" }).state).toEqual({ count: 2 });
  });

  test("REQUIRE_CLIENT_CERT turns on the API Shield check, with the fingerprint list", () => {
    expect(gatewayFromEnv({}).clientCert).toBeUndefined();
    expect(gatewayFromEnv({ REQUIRE_CLIENT_CERT: "1", CLIENT_CERT_FINGERPRINTS: "ab12" }).clientCert).toEqual(
      { fingerprints: ["ab12"] },
    );
  });
});

describe("the client IP on Workers", () => {
  /** The address the gateway keys an anonymous caller by, for a request Cloudflare delivered from `peer`. */
  async function clientIpOf(env: Record<string, string>, peer: string, headers: Record<string, string>) {
    const { clientIp } = gatewayFromEnv(env);
    if (!clientIp) throw new Error("expected a clientIp middleware");
    const app = new Hono<GatewayEnv>();
    app.use(clientIp);
    app.get("/", (c) => c.text(c.var.clientIp ?? ""));
    return (await app.request("/", { headers: { "cf-connecting-ip": peer, ...headers } })).text();
  }
  const proxy = "198.51.100.7";
  const headers = { forwarded: 'for="[2001:db8::5]:443";proto=https', "x-forwarded-for": "203.0.113.9" };

  test("TRUSTED_PROXY_HEADER=forwarded: a trusted proxy's Forwarded names the client, its X-Forwarded-For not", async () => {
    const env = { TRUSTED_PROXIES: "198.51.100.0/24", TRUSTED_PROXY_HEADER: "forwarded" };
    expect(await clientIpOf(env, proxy, headers)).toBe("2001:db8::5");
    expect(await clientIpOf(env, "192.0.2.1", headers)).toBe("192.0.2.1"); // not a trusted proxy
  });

  test("by default X-Forwarded-For alone is read", async () => {
    expect(await clientIpOf({ TRUSTED_PROXIES: "198.51.100.0/24" }, proxy, headers)).toBe("203.0.113.9");
  });
});

describe("JWT_JWKS_URL on Workers", () => {
  test("the key set is fetched once per isolate, though the commerce app is built per request", async () => {
    const rsa = await signingKey("RS256", "rsa-1");
    const jwks = startJwksServer([rsa.jwk]);
    try {
      const options = gatewayFromEnv({ JWT_JWKS_URL: jwks.url });
      const token = await new SignJWT({ sub: "alice", exp: Math.floor(Date.now() / 1000) + 300 })
        .setProtectedHeader({ alg: "RS256", kid: rsa.kid })
        .sign(rsa.privateKey);
      // As edge/entries/cloudflare.ts does with commerce: an app per request from the isolate's options.
      for (let i = 0; i < 3; i++) {
        const app = createApp({ ...options, actors: local });
        const response = await app.request("/v1/counters/jwks/increment", {
          method: "POST",
          body: "{}",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        });
        expect(response.status).toBe(200);
      }
      expect(jwks.hits).toBe(1);
    } finally {
      jwks.stop();
    }
  });
});

describe("JWT_MAX_LIFETIME on Workers", () => {
  test("a token valid for longer than the limit is refused, one within it passes", async () => {
    const key = "worker-jwt-secret-for-tests-0123456789";
    const app = createApp({ ...gatewayFromEnv({ JWT_SECRET: key, JWT_MAX_LIFETIME: "1h" }), actors: local });
    const ask = async (lifetimeSeconds: number) => {
      const token = await new SignJWT({ sub: "alice", scope: "admin" })
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime(Math.floor(Date.now() / 1000) + lifetimeSeconds)
        .sign(new TextEncoder().encode(key));
      return app.request("/v1/counters/lifetime/increment", {
        method: "POST",
        body: "{}",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      });
    };
    expect((await ask(30 * 60)).status).toBe(200);
    const refused = await ask(2 * 3600);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { detail: string }).detail).toBe("invalid token: exp too far ahead");
  });
});

describe("JWT_PREVIOUS_SECRET on Workers", () => {
  test("during a rotation tokens of the previous secret pass beside the new one's; a third secret's do not", async () => {
    const current = "worker-new-secret-for-tests-0123456789";
    const previous = "worker-old-secret-for-tests-0123456789";
    const app = createApp({
      ...gatewayFromEnv({ JWT_SECRET: current, JWT_PREVIOUS_SECRET: previous }),
      actors: local,
    });
    const ask = async (key: string) => {
      const token = await new SignJWT({ sub: "alice", scope: "admin" })
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
        .sign(new TextEncoder().encode(key));
      const response = await app.request("/v1/counters/rotation/increment", {
        method: "POST",
        body: "{}",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      });
      return response.status;
    };
    expect([
      await ask(current),
      await ask(previous),
      await ask("a-third-secret-for-tests-0123456789"),
    ]).toEqual([200, 200, 401]);
  });
});

describe("METRICS_PREVIOUS_TOKEN on Workers", () => {
  test("during a rotation /metrics takes the previous token beside the new one; a third is refused", async () => {
    const current = "worker-new-metrics-token-0123";
    const previous = "worker-old-metrics-token-0123";
    const app = createApp({
      ...gatewayFromEnv({ METRICS_TOKEN: current, METRICS_PREVIOUS_TOKEN: previous }),
      actors: local,
      dependencies: new Dependencies(),
    });
    const scrape = async (token: string) =>
      (await app.request("/metrics", { headers: { authorization: `Bearer ${token}` } })).status;
    expect([
      await scrape(current),
      await scrape(previous),
      await scrape("a-third-metrics-token-0123"),
    ]).toEqual([200, 200, 401]);
  });
});

describe("a Worker without JWT_SECRET or JWT_JWKS_URL", () => {
  test("refuses every caller of the demo counters (401), as a node with a key does an anonymous one", async () => {
    const app = createApp({ ...gatewayFromEnv({}), actors: local });
    const anonymous = await app.request("/v1/counters/unkeyed/increment", {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    // Before, with no key the Worker mounted no authentication, and anyone could write the counters.
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toContain("Bearer");
    const forged = await new SignJWT({ sub: "alice", scope: "admin" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("any-key-at-all-will-do-0123456789abcdef"));
    const read = await app.request("/v1/counters/unkeyed", {
      headers: { authorization: `Bearer ${forged}` },
    });
    expect(read.status).toBe(401);
    // Nothing was written: the actor has no stored state at all.
    expect(local.inspect({ type: "counter", key: "unkeyed" }).state).toBeUndefined();
  });
});
