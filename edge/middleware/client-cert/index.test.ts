// Unit tests of the client-cert middleware: Cloudflare's tlsClientAuth verdicts, as the Worker sees them.
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { errorHandler } from "../../errors.ts";
import type { GatewayEnv } from "../../env.ts";
import { clientCertRefusal, requireClientCert, type TlsClientAuth } from "./index.ts";

const verified: TlsClientAuth = {
  certPresented: "1",
  certVerified: "SUCCESS",
  certRevoked: "0",
  certFingerprintSHA256: "AB".repeat(32),
};

function appWith(fingerprints: string[] = []) {
  const app = new Hono<GatewayEnv>();
  app.onError(errorHandler());
  app.use(requireClientCert({ fingerprints }));
  app.get("/v1/thing", (c) => c.json({ ok: true }));
  return app;
}

/** A request as workerd hands it to the Worker: `cf` set by Cloudflare's edge. */
function withCf(tlsClientAuth: TlsClientAuth | undefined): Request {
  const request = new Request("https://edgewise.example/v1/thing");
  Object.defineProperty(request, "cf", { value: tlsClientAuth ? { tlsClientAuth } : {} });
  return request;
}

describe("client certificates behind API Shield", () => {
  test("a verified, unrevoked certificate passes", async () => {
    const response = await appWith().fetch(withCf(verified));
    expect(response.status).toBe(200);
  });

  test.each([
    ["no cf object at all (not behind Cloudflare)", undefined, "missing"],
    ["no certificate presented", { certPresented: "0", certVerified: "NONE" }, "missing"],
    ["expired", { ...verified, certVerified: "FAILED:certificate has expired" }, "unverified"],
    [
      "unknown CA",
      { ...verified, certVerified: "FAILED:unable to get local issuer certificate" },
      "unverified",
    ],
    ["revoked", { ...verified, certRevoked: "1" }, "revoked"],
  ] as const)("%s is refused with 401", async (_name, auth, refusal) => {
    expect(clientCertRefusal(auth as TlsClientAuth | undefined)).toBe(refusal);
    const response = await appWith().fetch(withCf(auth as TlsClientAuth | undefined));
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    expect(((await response.json()) as { detail: string }).detail).toContain(refusal);
  });

  test("with a fingerprint list, only those certificates pass (case-insensitive)", async () => {
    const allowed = appWith(["ab".repeat(32)]);
    expect((await allowed.fetch(withCf(verified))).status).toBe(200);
    const other = { ...verified, certFingerprintSHA256: "cd".repeat(32) };
    expect(clientCertRefusal(other, { fingerprints: ["ab".repeat(32)] })).toBe("not_allowed");
    expect((await allowed.fetch(withCf(other))).status).toBe(401);
  });
});
