// Who gets into the console: the admin guard (Bearer, session cookie, or `?token=` once), form CSRF checks, sign-out.
import type { Context, Hono } from "hono";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { AdminEvents } from "../audit/admin-events.ts";
import type { GatewayEnv } from "../env.ts";
import { page, wantsHtml } from "./page.tsx";
import { type ConsoleSessions, type Session, sameToken } from "./session.ts";
import { Layout, Notice } from "./views/layout.tsx";

export interface ConsoleAccess {
  /** Lets an admin through; anyone else gets the sign-in page (401) or "Forbidden" (403), or the problem+json. */
  guard(c: Context<GatewayEnv>, next: () => Promise<void>): Promise<Response | undefined>;
  /** The admin session the guard let this request through with. */
  sessionOf(c: Context<GatewayEnv>): Session & { kind: "admin" };
  /**
   * A state change's own check: a form post with the session's CSRF token, or a Bearer call. Undefined when it
   * passes; a browser's refused form gets a page saying what to do, any other client the problem+json.
   */
  checkForm(c: Context<GatewayEnv>): Promise<Response | undefined>;
  sessions: ConsoleSessions;
}

/** `adminEvents`: each sign-in with `?token=` is recorded as `admin.console_signed_in` (who, from where; never the token). */
export function consoleAccess(sessions: ConsoleSessions, adminEvents?: AdminEvents): ConsoleAccess {
  // The admin session of each request the guard let through.
  const admitted = new WeakMap<Request, Session & { kind: "admin" }>();

  async function guard(c: Context<GatewayEnv>, next: () => Promise<void>) {
    const url = new URL(c.req.url);
    const token = url.searchParams.get("token");
    let session: Session;
    if (token !== null && c.req.method === "GET") {
      session = await sessions.login(c, token);
      if (session.kind === "admin") {
        // A session opened is an admin's way in for hours: who opened it, and from where, goes to the audit.
        await adminEvents?.record(c, "console_signed_in", { subject: "console" }, undefined, {
          sub: session.principal.sub,
          via: "jwt",
        });
        // The token leaves the address bar (and the history, and Referer) at once: the cookie carries it.
        url.searchParams.delete("token");
        const target = `${url.pathname}${url.search}${url.hash}`;
        c.header("Cache-Control", "no-store");
        c.header("Referrer-Policy", "no-referrer");
        // A navigation another site started (a link in a runbook or a chat) does not send the SameSite=Strict
        // cookie, nor does a redirect it follows, nor a reload: the console would ask to sign in again. A page of
        // this origin moves on instead, and its navigation sends the cookie.
        const site = c.req.header("sec-fetch-site");
        if (site === "cross-site" || site === "same-site") {
          return page(
            c,
            <Layout title="Signed in" refresh={target}>
              <section class="notice">
                <h1>Signed in</h1>
                <p>
                  <a href={target}>Continue to the console</a>
                </p>
              </section>
            </Layout>,
          );
        }
        return c.redirect(target, 303);
      }
    } else {
      session = await sessions.resolve(c);
    }
    if (session.kind === "anonymous" || session.kind === "invalid" || session.kind === "ended") {
      c.header("WWW-Authenticate", 'Bearer realm="edgewise-console"');
      const message =
        session.kind === "invalid"
          ? `The console refused the token (${session.reason}).`
          : session.kind === "ended"
            ? "The console session has ended (signed out, expired, or no longer valid here)."
            : "The console needs an admin token.";
      // A browser gets the sign-in page; any other client the API's problem+json (API.md: every error is one).
      if (!wantsHtml(c)) throw new EdgewiseError("unauthorized", message);
      return page(
        c,
        <Notice
          title="Sign in"
          message={message}
          hint="Open /_console?token=<an admin JWT> once: it opens a console session (an HttpOnly cookie) and leaves the address bar. A Bearer header works too."
        />,
        401,
      );
    }
    if (session.kind === "forbidden") {
      if (!wantsHtml(c))
        throw new EdgewiseError("forbidden", "The console is for admins: the token has no admin scope.");
      return page(
        c,
        <Notice title="Forbidden" message="The console is for admins: the token has no admin scope." />,
        403,
      );
    }
    admitted.set(c.req.raw, session);
    await next();
  }

  const sessionOf = (c: Context<GatewayEnv>) => {
    const session = admitted.get(c.req.raw);
    if (!session) throw new EdgewiseError("unauthorized", "authentication required");
    return session;
  };

  // State changes: a form post with the session's CSRF token (the cookie is SameSite=Strict as well), or a
  // Bearer call, which no other site can make in the operator's name.
  // A browser's form gets a page saying what to do (most often: the page is from an earlier session, as signing in
  // again in another tab gives a new CSRF token); any other client the API's problem+json.
  async function checkForm(c: Context<GatewayEnv>): Promise<Response | undefined> {
    try {
      await checkFormOrThrow(c);
      return undefined;
    } catch (error) {
      if (!(error instanceof EdgewiseError) || error.code !== "forbidden" || !wantsHtml(c)) throw error;
      return page(
        c,
        <Notice
          title="Not done"
          message={`The console refused the form: ${error.message}.`}
          hint="This page may be from an earlier console session (signing in again starts a new one): reload the console and try again."
        />,
        403,
      );
    }
  }
  async function checkFormOrThrow(c: Context<GatewayEnv>): Promise<void> {
    const session = sessionOf(c);
    if (session.via === "bearer") return;
    // Origin is `null` on the console's own posts (its pages are `no-referrer`), and on any page that chooses so:
    // Sec-Fetch-Site, which a page cannot choose, tells another site's (or a sibling subdomain's) form apart.
    const origin = c.req.header("origin");
    const site = c.req.header("sec-fetch-site");
    if (
      (origin !== undefined && origin !== "null" && origin !== new URL(c.req.url).origin) ||
      (site !== undefined && site !== "same-origin" && site !== "none")
    ) {
      throw new EdgewiseError("forbidden", "a console form must come from the console");
    }
    const form = await c.req.parseBody();
    const csrf = typeof form.csrf === "string" ? form.csrf : "";
    if (!sameToken(csrf, session.csrf)) throw new EdgewiseError("forbidden", "missing or wrong CSRF token");
  }

  return { guard, sessionOf, checkForm, sessions };
}

/** `POST /_console/logout`: ends the console session (a form with its CSRF token). */
export function signOutRoutes(app: Hono<GatewayEnv>, access: ConsoleAccess): void {
  app.post("/_console/logout", async (c) => {
    const refused = await access.checkForm(c);
    if (refused) return refused;
    return page(c, <Notice title="Signed out" message={access.sessions.logout(c)} />);
  });
}
