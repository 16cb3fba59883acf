// The operator console on workerd: sessions sealed in the cookie (any isolate opens them), the page, dead-letter replay.
import { describe, expect, test } from "bun:test";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { startReceiver } from "../broker/helpers.ts";
import { eventually, uniqueName } from "./client.ts";
import type { CommerceWorker } from "./workerd-node.ts";

/** `/_console…` on the Worker, never following redirects (the test reads them). */
function consoleFetch(running: CommerceWorker, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${running.worker.match}${path}`, { redirect: "manual", ...init });
}

/** The console cookie's value out of a Set-Cookie header. */
function cookieOf(response: Response): { value: string; header: string } {
  const header = response.headers.get("set-cookie") ?? "";
  const value = /edgewise_console=([^;]*)/.exec(header)?.[1];
  if (!value) throw new Error(`no console cookie in ${JSON.stringify(header)}`);
  return { value, header };
}

const withCookie = (value: string, headers: Record<string, string> = {}) => ({
  headers: { cookie: `edgewise_console=${value}`, ...headers },
});

export function consoleWorkerdSuite(current: () => CommerceWorker): void {
  describe("the console on workerd", () => {
    const admin = (running: CommerceWorker, ttlSeconds = 3_600) =>
      issueToken({ sub: "ops", scopes: ["admin"], ttlSeconds, secret: running.jwtSecret });

    async function signIn(running: CommerceWorker, token?: string) {
      const response = await consoleFetch(running, `/_console?token=${token ?? (await admin(running))}`);
      expect(response.status).toBe(303);
      return cookieOf(response);
    }

    test("no credentials: 401 problem+json, or the sign-in page for a browser; a non-admin 403", async () => {
      const running = current();
      const bare = await consoleFetch(running, "/_console");
      expect(bare.status).toBe(401);
      expect(bare.headers.get("content-type")).toContain("application/problem+json");
      expect(bare.headers.get("www-authenticate")).toContain("Bearer");
      const browser = await consoleFetch(running, "/_console", { headers: { accept: "text/html" } });
      expect(browser.status).toBe(401);
      expect(browser.headers.get("content-type")).toContain("text/html");
      expect(await browser.text()).toContain("Sign in");

      const reader = await issueToken({
        sub: "c1",
        scopes: ["orders:read"],
        ttlSeconds: 600,
        secret: running.jwtSecret,
      });
      const bearer = await consoleFetch(running, "/_console", {
        headers: { authorization: `Bearer ${reader}` },
      });
      expect(bearer.status).toBe(403);
      expect(bearer.headers.get("content-type")).toContain("application/problem+json");
      const query = await consoleFetch(running, `/_console?token=${reader}`);
      expect(query.status).toBe(403);
      expect(query.headers.get("set-cookie")).toBeNull();
    }, 20_000);

    test("an admin Bearer token opens the page on each request, as on a node", async () => {
      const running = current();
      const token = await admin(running);
      for (let i = 0; i < 3; i++) {
        const page = await consoleFetch(running, "/_console", {
          headers: { authorization: `Bearer ${token}` },
        });
        expect(page.status).toBe(200);
        expect(page.headers.get("set-cookie")).toBeNull();
      }
    }, 20_000);

    test("?token= sets a sealed cookie and leaves the address bar; the cookie alone opens the page after", async () => {
      const running = current();
      const response = await consoleFetch(running, `/_console?token=${await admin(running)}`);
      expect(response.status).toBe(303);
      expect(response.headers.get("location")).toBe("/_console");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
      const { value, header } = cookieOf(response);
      expect(header).toMatch(/HttpOnly/i);
      expect(header).toMatch(/SameSite=Strict/i);
      expect(header).toMatch(/Path=\/_console/);
      const maxAge = Number(/Max-Age=(\d+)/i.exec(header)?.[1]);
      expect(maxAge).toBeGreaterThan(3_500);
      expect(maxAge).toBeLessThanOrEqual(3_600); // capped at the token's exp (an hour), below the 8 h TTL
      // Several requests in a row: nothing is held by the isolate that signed in, so any isolate would do.
      for (let i = 0; i < 4; i++) {
        const page = await consoleFetch(running, "/_console", withCookie(value));
        expect(page.status).toBe(200);
        const html = await page.text();
        expect(html).toContain('id="topology"');
        expect(html).toContain('id="breaker-table"');
      }
      // The cookie is a console session, not an API credential.
      const api = await fetch(`${running.worker.match}/v1/activity`, withCookie(value));
      expect(api.status).toBe(401);
    }, 20_000);

    test("a forged, altered or foreign cookie is refused", async () => {
      const running = current();
      const { value } = await signIn(running);
      const [header, payload, signature] = value.split(".") as [string, string, string];
      // The same claims under another subject: the signature no longer matches.
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
      const altered = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: "mallory" })).toString("base64url")}.${signature}`;
      // One character of the signature changed, in the middle: the last one's low bits are base64url padding, which
      // a decoder ignores, so changing only those (A to B, say) left the signature valid one run in sixteen.
      const middle = Math.floor(signature.length / 2);
      const changed = signature[middle] === "A" ? "B" : "A";
      const flipped = `${header}.${payload}.${signature.slice(0, middle)}${changed}${signature.slice(middle + 1)}`;
      // An admin API JWT, signed with JWT_SECRET itself: the cookie key is derived apart, so it is no cookie.
      const apiToken = await admin(running);
      for (const cookie of [altered, flipped, apiToken, "garbage", `${header}.${payload}.`]) {
        const page = await consoleFetch(running, "/_console", withCookie(cookie));
        expect(page.status).toBe(401);
        expect(page.headers.get("content-type")).toContain("application/problem+json");
        // The refused cookie is cleared.
        expect(page.headers.get("set-cookie") ?? "").toMatch(/edgewise_console=;.*Max-Age=0/i);
      }
    }, 20_000);

    test("a cookie stops working when the token it came from expires", async () => {
      const running = current();
      // 6 s: room for the sign-in and the first page on a loaded machine, before the token runs out.
      const { value, header } = await signIn(running, await admin(running, 6));
      expect(Number(/Max-Age=(\d+)/i.exec(header)?.[1])).toBeLessThanOrEqual(6);
      expect((await consoleFetch(running, "/_console", withCookie(value))).status).toBe(200);
      await Bun.sleep(6_500);
      // The browser would drop it by now; one that sends it anyway is refused.
      expect((await consoleFetch(running, "/_console", withCookie(value))).status).toBe(401);
    }, 20_000);

    test("the page shows the isolate's breakers, the activity log and an actor; no trace store", async () => {
      const running = current();
      const { value } = await signIn(running);
      // A refused credential is a security event in the activity log, written in the request's waitUntil.
      const refused = await fetch(`${running.worker.match}/v1/activity`, {
        headers: { authorization: "Bearer not-a-jwt" },
      });
      expect(refused.status).toBe(401);
      const sku = uniqueName("console-sku");
      await running.client.putSku(sku, 7, 250);
      let html = "";
      await eventually(async () => {
        html = await (await consoleFetch(running, "/_console", withCookie(value))).text();
        return html.includes("security.");
      }, "a security event on the console page");
      expect(html).toContain("Latest events");
      expect(html).not.toContain("data-stream"); // no live stream on Workers: the page does not open one
      expect(html).toContain("postgres"); // a breaker of this isolate
      expect(html).toContain("No trace store on Workers");
      const actor = await consoleFetch(running, `/_console/actors/inventory/${sku}`, withCookie(value));
      expect(actor.status).toBe(200);
      const view = await actor.text();
      expect(view).toContain(sku);
      expect(view).toContain("250"); // its state, read from the Durable Object
      // The live stream route says it is not here.
      expect((await consoleFetch(running, "/_console/events/stream", withCookie(value))).status).toBe(404);
    }, 30_000);

    test("a dead letter is replayed from the console with the session's CSRF token, and not without", async () => {
      const running = current();
      const { broker } = running;
      // The receiver fails the first delivery (no retries: dead-lettered at once) and takes the replay.
      let calls = 0;
      const receiver = startReceiver(() =>
        ++calls === 1 ? new Response("down", { status: 500 }) : new Response("ok"),
      );
      const path = `/${uniqueName("dead")}`;
      const delivered = () => receiver.deliveries.filter((d) => d.path === path).length;
      try {
        const published = await fetch(`${broker.url}/v2/publish/${receiver.url(path)}`, {
          method: "POST",
          headers: { authorization: `Bearer ${broker.token}`, "upstash-retries": "0" },
          body: "{}",
        });
        expect(published.status).toBe(201);
        const { messageId } = (await published.json()) as { messageId: string };
        let dlqId = "";
        await eventually(async () => {
          const dlq = await fetch(`${broker.url}/v2/dlq`, {
            headers: { authorization: `Bearer ${broker.token}` },
          });
          const found = (
            (await dlq.json()) as { messages: Array<{ dlqId: string; messageId: string }> }
          ).messages.find((m) => m.messageId === messageId);
          dlqId = found?.dlqId ?? "";
          return dlqId !== "";
        }, "the dead letter");

        const { value } = await signIn(running);
        const html = await (await consoleFetch(running, "/_console", withCookie(value))).text();
        expect(html).toContain(`/_console/dlq/${encodeURIComponent(dlqId)}/retry`);
        const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(html)?.[1] ?? "";
        expect(csrf).not.toBe("");
        const retry = (body: string) =>
          consoleFetch(running, `/_console/dlq/${encodeURIComponent(dlqId)}/retry`, {
            method: "POST",
            ...withCookie(value, { "content-type": "application/x-www-form-urlencoded", origin: "null" }),
            body,
          });
        const without = await retry("");
        expect(without.status).toBe(403);
        const wrong = await retry(`csrf=${"0".repeat(64)}`);
        expect(wrong.status).toBe(403);
        expect(delivered()).toBe(1); // nothing replayed
        const replayed = await retry(`csrf=${csrf}`);
        expect(replayed.status).toBe(303);
        expect(replayed.headers.get("location")).toBe("/_console?notice=replayed#queues");
        await eventually(() => delivered() === 2, "the replayed delivery");
      } finally {
        receiver.stop();
      }
    }, 30_000);
  });
}
