// The console attacked in headless Chromium (Debian's, driven by playwright-core) against a gateway on Bun with an
// activity log in memory: markup that arrives on the live stream stays text, a refused `?token=` leaves the address
// bar, and signing out ends the live stream.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { launchChromium } from "../support/chromium.ts";
import type { ActorHost } from "../../actors/runtime/index.ts";
import { createApp } from "../../edge/app.ts";
import type { ConsoleLogEntry } from "../../edge/console/index.tsx";
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import { createEnvelope, type Envelope } from "../../shared/envelope/index.ts";

const secret = "console-browser-secret-console-browser-secret";
/** Runs if any of it becomes markup: the CSP would block the inline handlers, so the test looks for both. */
const payload = `<img src=x onerror="window.pwned=1"><svg onload="window.pwned=1"></svg><b>bold</b>`;

const entries: ConsoleLogEntry[] = [];
const append = (envelope: Envelope) => {
  const entry = { position: String(entries.length + 1), envelope };
  entries.push(entry);
  return entry;
};
const gateway = createApp({
  actors: {} as unknown as ActorHost,
  auth: { secret },
  console: {
    topology: { actors: [], consumers: [], subscriptions: [] },
    events: {
      latestActivity: async (limit) => [...entries].reverse().slice(0, limit),
      activityAfter: async (after, limit) =>
        entries.filter((e) => BigInt(e.position) > BigInt(after)).slice(0, limit),
    },
    live: { intervalMs: 50, heartbeatMs: 60_000, settleMs: 100 },
  },
});

let server: ReturnType<typeof Bun.serve>;
let base: string;
let browser: Browser;
beforeAll(async () => {
  server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (request) => gateway.fetch(request) });
  base = `http://127.0.0.1:${server.port}`;
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop(true);
});

const token = (scopes: string[]) => issueToken({ sub: "op", scopes, ttlSeconds: 600, secret });

describe("the console under attack, in Chromium", () => {
  test("a refused ?token= (not admin, or not a token) leaves the address bar and the history", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const reader = await token(["orders:read"]);
      const refused = await page.goto(`${base}/_console/actors/a/b?x=1&token=${reader}`);
      expect(refused?.status()).toBe(403);
      expect(await page.locator("h1").textContent()).toBe("Forbidden");
      await page.waitForFunction(() => !location.search.includes("token="), undefined, { timeout: 3_000 });
      expect(page.url()).toBe(`${base}/_console/actors/a/b?x=1`);
      const bogus = await page.goto(`${base}/_console?token=not-a-jwt`);
      expect(bogus?.status()).toBe(401);
      await page.waitForFunction(() => !location.search.includes("token="), undefined, { timeout: 3_000 });
      expect(page.url()).toBe(`${base}/_console`);
      // Back is the forbidden page, at its address without the token.
      await page.goBack();
      expect(page.url()).toBe(`${base}/_console/actors/a/b?x=1`);
      expect(await context.cookies()).toEqual([]);
    } finally {
      await context.close();
    }
  }, 30_000);

  test("a sign-in link on another site opens the console, though the cookie is SameSite=Strict", async () => {
    // Another site (localhost is not 127.0.0.1) links to the console, as a runbook or a chat message would.
    const admin = await token(["admin"]);
    const elsewhere = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () =>
        new Response(`<a id="open" href="${base}/_console?token=${admin}">console</a>`, {
          headers: { "content-type": "text/html" },
        }),
    });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`http://localhost:${elsewhere.port}/`);
      await page.click("#open");
      await page.waitForURL(`${base}/_console`, { timeout: 10_000 });
      await page.waitForSelector("#topology", { timeout: 10_000 });
      expect(await page.title()).toBe("Overview · Edgewise console");
      // Neither address in the history holds the token.
      await page.goBack();
      expect(page.url()).toBe(`http://localhost:${elsewhere.port}/`);
    } finally {
      await context.close();
      await elsewhere.stop(true);
    }
  }, 30_000);

  test("a form of a page from an earlier session is refused with a page that says what to do", async () => {
    const context = await browser.newContext();
    try {
      const stale = await context.newPage();
      await stale.goto(`${base}/_console?token=${await token(["admin"])}`);
      // Signing in again (the console link clicked once more) opens a new session, with a new CSRF token.
      const fresh = await context.newPage();
      await fresh.goto(`${base}/_console?token=${await token(["admin"])}`);
      const [refused] = await Promise.all([
        stale.waitForResponse(`${base}/_console/logout`),
        stale.click("text=Sign out"),
      ]);
      expect(refused.status()).toBe(403);
      expect(refused.headers()["content-type"]).toContain("text/html");
      expect(await stale.locator("h1").textContent()).toBe("Not done");
      expect(await stale.locator("main").textContent()).toContain("reload the console");
    } finally {
      await context.close();
    }
  }, 30_000);

  test("markup in streamed events stays text, and signing out ends the stream", async () => {
    append(createEnvelope({ type: "Before", source: "edgewise://test", data: {} }));
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      await page.goto(`${base}/_console?token=${await token(["admin"])}`);
      expect(page.url()).toBe(`${base}/_console`);
      await page.evaluate(() => {
        const w = window as unknown as { violations: string[] };
        w.violations = [];
        document.addEventListener("securitypolicyviolation", (event) => {
          w.violations.push(`${event.violatedDirective} ${event.sample}`);
        });
      });
      await page.waitForSelector('#events-status[data-state="live"]', { timeout: 10_000 });
      const streamed = {
        ...createEnvelope({
          type: payload,
          source: "edgewise://test",
          subject: payload,
          data: { note: payload },
        }),
        id: payload,
        time: payload,
      };
      append(streamed);
      await page.waitForSelector("#event-rows tr.fresh", { timeout: 10_000 });
      const row = page.locator("#event-rows tr.fresh").first();
      expect(await row.locator("td").allTextContents()).toEqual([
        payload,
        payload,
        payload,
        JSON.stringify({ note: payload }),
      ]);
      expect(await page.locator("#event-rows img, #event-rows svg, #event-rows b").count()).toBe(0);
      const state = await page.evaluate(() => {
        const w = window as unknown as { pwned?: number; violations: string[] };
        return { pwned: w.pwned, violations: w.violations };
      });
      expect(state).toEqual({ pwned: undefined, violations: [] });

      // Signed out in another tab: the stream this page holds ends, and no new event reaches it.
      const other = await context.newPage();
      await other.goto(`${base}/_console`);
      await Promise.all([other.waitForURL(`${base}/_console/logout`), other.click("text=Sign out")]);
      // The page says it was signed out, rather than that it is retrying a stream it will never be let into.
      await page.waitForSelector('#events-status[data-state="signed-out"]', { timeout: 5_000 });
      append(createEnvelope({ type: "AfterSignOut", source: "edgewise://test", data: {} }));
      await Bun.sleep(400);
      expect(await page.locator("#event-rows").textContent()).not.toContain("AfterSignOut");
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 30_000);
});
