// Which of the gateway's requests need an API Shield client certificate (createApp with clientCert), in process.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { counterActor } from "../actors/examples/counter.ts";
import { LocalActorHost } from "../actors/hosts/local/index.ts";
import { openBunSqlite } from "../actors/hosts/local/sqlite-bun.ts";
import { createSigner } from "../deploy/local/broker/signing.ts";
import { createEnvelope } from "../shared/envelope/index.ts";
import { EdgewiseMetrics } from "../shared/telemetry/metrics/index.ts";
import { createApp } from "./app.ts";
import type { TlsClientAuth } from "./middleware/client-cert/index.ts";

const host = new LocalActorHost({
  actors: [counterActor],
  db: openBunSqlite(join(mkdtempSync(join(tmpdir(), "edgewise-app-client-cert-")), "actors.db")),
});
afterAll(() => host.stop());

const publicUrl = "https://edgewise.example";
const signingKey = "sig_current_for_client_cert_tests";
const app = createApp({
  actors: host,
  clientCert: {},
  auth: { secret: "a-jwt-secret-for-the-client-cert-test-0123" },
  delivery: { currentSigningKey: signingKey, nextSigningKey: signingKey, publicUrl },
  metrics: new EdgewiseMetrics(),
});

const verified: TlsClientAuth = { certPresented: "1", certVerified: "SUCCESS", certRevoked: "0" };

/** A request as workerd hands it to the Worker: `cf` set by Cloudflare's edge, here with or without a certificate. */
function request(path: string, cert?: TlsClientAuth, init: RequestInit = {}): Request {
  const req = new Request(`${publicUrl}${path}`, init);
  const tlsClientAuth = cert ?? { certPresented: "0", certVerified: "NONE" };
  Object.defineProperty(req, "cf", { value: { tlsClientAuth } });
  return req;
}

const refusedForCert = async (response: Response) =>
  response.status === 401 &&
  ((await response.json()) as { detail: string }).detail.includes("TLS client certificate");

describe("REQUIRE_CLIENT_CERT: every request but probes, scrapes and signed deliveries needs a certificate", () => {
  test("GET /openapi.json without a certificate is refused, as the API is", async () => {
    expect(await refusedForCert(await app.request(request("/openapi.json")))).toBe(true);
    expect(await refusedForCert(await app.request(request("/v1/counters/a")))).toBe(true);
  });

  test("with a verified certificate, /openapi.json needs no JWT, and a bad one does not matter", async () => {
    const plain = await app.request(request("/openapi.json", verified));
    expect(plain.status).toBe(200);
    expect(((await plain.json()) as { openapi: string }).openapi).toBe("3.1.0");
    const badToken = request("/openapi.json", verified, { headers: { authorization: "Bearer not.a.token" } });
    expect((await app.request(badToken)).status).toBe(200);
    // The API past it still asks for a caller.
    expect((await app.request(request("/v1/counters/a", verified))).status).toBe(401);
  });

  test("/healthz, /readyz and /metrics answer without a certificate", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      expect({ path, status: (await app.request(request(path))).status }).toEqual({ path, status: 200 });
    }
  });

  test("a signed delivery needs no certificate: its signature is what it shows", async () => {
    const url = `${publicUrl}/_edgewise/deliver/counter/d1`;
    const body = JSON.stringify(
      createEnvelope({ type: "Increment", source: "edgewise://test", target: "counter/d1", data: { by: 1 } }),
    );
    const signature = await createSigner(signingKey)(url, new TextEncoder().encode(body));
    const delivery = request("/_edgewise/deliver/counter/d1", undefined, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "upstash-retried": "0", "upstash-signature": signature },
    });
    expect((await app.request(delivery)).status).toBe(200);
    expect(host.inspect({ type: "counter", key: "d1" }).state).toMatchObject({ count: 1 });
  });
});
