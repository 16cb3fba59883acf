// The Worker as a gateway to a self-hosted actor host: every call leaves through the mtls_certificates binding.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../../actors/examples/counter.ts";
import { LocalActorHost } from "../../actors/hosts/local/index.ts";
import { openBunSqlite } from "../../actors/hosts/local/sqlite-bun.ts";
import { createApp } from "../app.ts";
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
