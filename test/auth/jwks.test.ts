// JWKS: RS256 and ES256 keys from a local endpoint, fetched once and cached; an unknown kid refetches per cooldown;
// an identity provider that is down costs one fetch per backoff, and the keys it last served stay usable a while.
import { afterEach, describe, expect, test } from "bun:test";
import { createLocalJWKSet, type JWTPayload, SignJWT } from "jose";
import type { RemoteKeySetOptions } from "../../edge/middleware/auth/jwks.ts";
import { ManualClock } from "../../shared/clock/index.ts";
import { bearer, type SigningKey, signingKey, startJwksServer, testGateway } from "./helpers.ts";

const claims = (): JWTPayload => ({
  sub: "svc",
  scope: "orders:read",
  exp: Math.floor(Date.now() / 1000) + 300,
});
const sign = (key: SigningKey) =>
  new SignJWT(claims()).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey);

const servers: Array<{ stop(): void }> = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.stop();
});

describe("JWKS", () => {
  test("RS256 and ES256 tokens verify; the key set is fetched once for many requests", async () => {
    const rsa = await signingKey("RS256", "rsa-1");
    const ec = await signingKey("ES256", "ec-1");
    const jwks = startJwksServer([rsa.jwk, ec.jwk]);
    servers.push(jwks);
    const { app } = testGateway({ jwksUrl: jwks.url });
    const tokens = [await sign(rsa), await sign(ec)];

    const first = await Promise.all(tokens.map((t) => app.request("/orders", { headers: bearer(t) })));
    expect(first.map((r) => r.status)).toEqual([200, 200]);
    for (let i = 0; i < 50; i++) {
      const response = await app.request("/orders", { headers: bearer(tokens[i % 2] as string) });
      expect(response.status).toBe(200);
    }
    expect(jwks.hits).toBe(1);
  });

  test("concurrent first requests share one fetch", async () => {
    const rsa = await signingKey("RS256", "rsa-1");
    const jwks = startJwksServer([rsa.jwk]);
    servers.push(jwks);
    const { app } = testGateway({ jwksUrl: jwks.url });
    const token = await sign(rsa);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => app.request("/orders", { headers: bearer(token) })),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(jwks.hits).toBe(1);
  });

  test("an unknown kid refetches at most once per cooldown, and a rotated-in key then works", async () => {
    // Ten calls must fit in one cooldown: 1 s leaves a loaded machine room (300 ms did not, always).
    const cooldownMs = 1_000;
    const current = await signingKey("RS256", "current");
    const next = await signingKey("ES256", "next");
    const jwks = startJwksServer([current.jwk]);
    servers.push(jwks);
    const { app } = testGateway({ jwksUrl: jwks.url, jwksOptions: { cooldownDuration: cooldownMs } });
    const call = async (key: SigningKey) =>
      (await app.request("/orders", { headers: bearer(await sign(key)) })).status;

    expect(await call(current)).toBe(200);
    expect(jwks.hits).toBe(1);
    // Within the cooldown, unknown kids are refused from the cache: a flood of forged kids costs no fetch.
    for (let i = 0; i < 10; i++) expect(await call(next)).toBe(401);
    expect(jwks.hits).toBe(1);

    await Bun.sleep(cooldownMs + 50);
    expect(await call(next)).toBe(401); // one refetch: still not published
    expect(jwks.hits).toBe(2);
    for (let i = 0; i < 10; i++) expect(await call(next)).toBe(401);
    expect(jwks.hits).toBe(2);

    jwks.publish([current.jwk, next.jwk]);
    await Bun.sleep(cooldownMs + 50);
    expect(await call(next)).toBe(200); // refetched: the rotated key is in
    expect(await call(current)).toBe(200);
    expect(jwks.hits).toBe(3);
  });

  test("a JWKS that cannot be fetched gives 503, not 401: the token is not at fault", async () => {
    const rsa = await signingKey("RS256", "rsa-1");
    const jwks = startJwksServer([]);
    const url = jwks.url;
    jwks.stop();
    const gateway = testGateway({ jwksUrl: url, jwksOptions: { timeoutDuration: 1000 } });
    const response = await gateway.app.request("/orders", { headers: bearer(await sign(rsa)) });
    expect(response.status).toBe(503);
    expect((await response.json()).code).toBe("unavailable");
    expect(gateway.hits).toBe(0);
  });

  describe("the identity provider down", () => {
    // The verified-token cache is off: every request resolves its key.
    const gatewayFor = (url: string, options: RemoteKeySetOptions) =>
      testGateway({ jwksUrl: url, cacheEntries: 0, jwksOptions: options });
    const status = async (app: ReturnType<typeof testGateway>["app"], token: string) =>
      (await app.request("/orders", { headers: bearer(token) })).status;

    test("after the cache's max age, the keys it last served keep verifying; it is asked once per backoff", async () => {
      const rsa = await signingKey("RS256", "rsa-1");
      const jwks = startJwksServer([rsa.jwk]);
      servers.push(jwks);
      const reported: unknown[] = [];
      const report = (error: unknown) => reported.push(error);
      // Ten calls must fit in one backoff, and five in one max age: a loaded machine needs room (300 and 200 ms
      // did not always give it).
      const { app } = gatewayFor(jwks.url, {
        cacheMaxAge: 500,
        cooldownDuration: 5_000,
        retryMs: 1_000,
        report,
      });
      const token = await sign(rsa);
      expect(await status(app, token)).toBe(200);
      expect(jwks.hits).toBe(1);

      jwks.fail();
      await Bun.sleep(550); // past cacheMaxAge: jose refetches, and the fetch fails
      const during = [];
      for (let i = 0; i < 10; i++) during.push(await status(app, token));
      expect(during).toEqual(Array(10).fill(200));
      expect(jwks.hits).toBe(2); // one failed refetch, not one per request
      expect(reported).toHaveLength(1); // the outage is told, though every request was answered

      jwks.recover();
      await Bun.sleep(1_050); // past the backoff: one probe, which succeeds
      expect(await status(app, token)).toBe(200);
      expect(jwks.hits).toBe(3);
      for (let i = 0; i < 5; i++) expect(await status(app, token)).toBe(200);
      expect(jwks.hits).toBe(3);
    });

    test("down at start: 503, and one fetch per backoff, however many requests; then it works", async () => {
      const rsa = await signingKey("RS256", "rsa-1");
      const jwks = startJwksServer([rsa.jwk]);
      servers.push(jwks);
      jwks.fail();
      // Ten calls must fit in one backoff: 1 s leaves a loaded machine room.
      const { app } = gatewayFor(jwks.url, { retryMs: 1_000 });
      const token = await sign(rsa);
      const statuses = [];
      for (let i = 0; i < 10; i++) statuses.push(await status(app, token));
      expect(statuses).toEqual(Array(10).fill(503));
      expect(jwks.hits).toBe(1);

      jwks.recover();
      await Bun.sleep(1_050);
      expect(await status(app, token)).toBe(200);
      expect(jwks.hits).toBe(2);
    });

    test("an unknown kid during an outage is 503 (we cannot tell) and costs no fetch within the backoff", async () => {
      const rsa = await signingKey("RS256", "rsa-1");
      const jwks = startJwksServer([rsa.jwk]);
      servers.push(jwks);
      const { app } = gatewayFor(jwks.url, { cacheMaxAge: 200, retryMs: 5_000 });
      expect(await status(app, await sign(rsa))).toBe(200);
      jwks.fail();
      await Bun.sleep(250);
      expect(await status(app, await sign(rsa))).toBe(200); // the failed refetch; the last keys answer
      const forged = await signingKey("RS256", "forged");
      for (let i = 0; i < 10; i++) expect(await status(app, await sign(forged))).toBe(503);
      expect(await status(app, await sign(rsa))).toBe(200);
      expect(jwks.hits).toBe(2);
    });

    test("keys older than maxStaleMs are not used: 503", async () => {
      const rsa = await signingKey("RS256", "rsa-1");
      const jwks = startJwksServer([rsa.jwk]);
      servers.push(jwks);
      // The second call must come within maxStaleMs of the first: 1 s, not 400 ms, for a loaded machine.
      const { app } = gatewayFor(jwks.url, { cacheMaxAge: 100, maxStaleMs: 1_000, retryMs: 50 });
      const token = await sign(rsa);
      expect(await status(app, token)).toBe(200);
      jwks.fail();
      await Bun.sleep(150);
      expect(await status(app, token)).toBe(200);
      await Bun.sleep(900); // 1,050 ms since the last successful fetch
      expect(await status(app, token)).toBe(503);
    });
  });

  describe("the wall clock stepped back an hour", () => {
    // jose's key set reads Date.now() itself: for these tests it reads the manual clock's wall time, as the
    // verifier's claim checks do through the clock port.
    const realNow = Date.now;
    afterEach(() => {
      Date.now = realNow;
    });
    const stepped = () => {
      const clock = new ManualClock(realNow());
      Date.now = () => clock.now();
      return clock;
    };
    const status = async (app: ReturnType<typeof testGateway>["app"], token: string) =>
      (await app.request("/orders", { headers: bearer(token) })).status;

    test("a provider down at the step is asked again after the backoff, not after the hour", async () => {
      const clock = stepped();
      const rsa = await signingKey("RS256", "rsa-1");
      const jwks = startJwksServer([rsa.jwk]);
      servers.push(jwks);
      jwks.fail();
      const { app } = testGateway({
        jwksUrl: jwks.url,
        clock,
        cacheEntries: 0,
        jwksOptions: { retryMs: 300, clock },
      });
      expect(await status(app, await sign(rsa))).toBe(503);
      jwks.recover();
      clock.step(-3_600_000);
      clock.advance(300);
      expect(await status(app, await sign(rsa))).toBe(200);
      expect(jwks.hits).toBe(2);
    });

    test("a rotated-in key works once the cooldown has passed, not an hour later", async () => {
      const clock = stepped();
      const current = await signingKey("RS256", "current");
      const next = await signingKey("ES256", "next");
      const jwks = startJwksServer([current.jwk]);
      servers.push(jwks);
      const { app } = testGateway({
        jwksUrl: jwks.url,
        clock,
        jwksOptions: { cooldownDuration: 300, clock },
      });
      expect(await status(app, await sign(current))).toBe(200);
      clock.step(-3_600_000);
      jwks.publish([current.jwk, next.jwk]);
      expect(await status(app, await sign(next))).toBe(401); // within the cooldown: no fetch
      clock.advance(300);
      expect(await status(app, await sign(next))).toBe(200);
      expect(jwks.hits).toBe(2);
    });

    test("a withdrawn key stops verifying once the cache's max age has passed, not an hour later", async () => {
      const clock = stepped();
      const rsa = await signingKey("RS256", "rsa-1");
      const jwks = startJwksServer([rsa.jwk]);
      servers.push(jwks);
      const { app } = testGateway({
        jwksUrl: jwks.url,
        clock,
        cacheEntries: 0,
        jwksOptions: { cacheMaxAge: 500, clock },
      });
      expect(await status(app, await sign(rsa))).toBe(200);
      clock.step(-3_600_000);
      jwks.publish([]);
      clock.advance(499);
      expect(await status(app, await sign(rsa))).toBe(200);
      clock.advance(1);
      expect(await status(app, await sign(rsa))).toBe(401);
      expect(jwks.hits).toBe(2);
    });
  });

  test("an injected key set replaces the URL (no network)", async () => {
    const ec = await signingKey("ES256", "ec-1");
    const gateway = testGateway({ jwks: createLocalJWKSet({ keys: [ec.jwk] }) });
    expect((await gateway.app.request("/orders", { headers: bearer(await sign(ec)) })).status).toBe(200);
    const stranger = await signingKey("ES256", "ec-2");
    expect((await gateway.app.request("/orders", { headers: bearer(await sign(stranger)) })).status).toBe(
      401,
    );
  });
});
