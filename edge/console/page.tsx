// How a console route answers: a page under its own CSP, or a refusal (a page for a browser, else problem+json).
import type { Context, MiddlewareHandler } from "hono";
import { uniqueSymbol } from "hono-openapi";
import { raw } from "hono/html";
import type { Child } from "hono/jsx";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { errorFields } from "../../shared/telemetry/log/index.ts";
import type { GatewayEnv } from "../env.ts";
import { fieldNames } from "../middleware/validation/index.ts";
import { Notice } from "./views/layout.tsx";

/**
 * Scripts and styles from this origin only (no inline code, so no nonce either); forms post only here; the live
 * event stream (EventSource) connects only here; nothing frames the console.
 */
export const consolePolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * A console page: its own CSP, never cached, and readable by this origin only (`Cross-Origin-Resource-Policy:
 * same-origin`, where the API's is `same-site`): a sibling subdomain cannot load an admin's page as a resource.
 */
export function page(c: Context, node: Child, status: 200 | 400 | 401 | 403 | 404 | 502 | 503 = 200) {
  c.header("Content-Security-Policy", consolePolicy);
  c.header("Cross-Origin-Resource-Policy", "same-origin");
  c.header("Cache-Control", "no-store");
  return c.html(
    <>
      {raw("<!DOCTYPE html>")}
      {node}
    </>,
    status,
  );
}

/**
 * A request the console refuses (4xx): a browser gets a page saying why, any other client the problem+json. `takes`:
 * the names of the parameters the refusing validator takes, when it was one (`pageChecked`).
 */
export function refused(c: Context, title: string, error: EdgewiseError, takes?: readonly string[]) {
  if (!wantsHtml(c)) throw error;
  return page(
    c,
    <Notice title={title} message={sentence(refusal(error, takes))} />,
    error.status as 400 | 404,
  );
}

/**
 * What a refusal says on a page. A refused field is named by the client's own text when the console does not take
 * it (`?<any text>=1`), so a link could put words of its choosing on the console's origin: a sentence ("Your session
 * expired. Sign in again at https://…"), or, as a plain word, `Sign_in_at_evil.example`. So a page names only the
 * parameters the console takes, and for any other says which those are (what a typo needs). The problem+json keeps
 * the name, for the client that sent it.
 */
function refusal(error: EdgewiseError, takes: readonly string[] = []): string {
  const first = error.issues?.[0];
  if (first === undefined || first.path === "") return error.message;
  if (takes.includes(first.path.split(".")[0] as string)) return error.message;
  const target = /^(query|param) is invalid /.exec(error.message)?.[1] ?? "the request";
  const known = takes.length > 0 ? `it takes ${takes.join(", ")}` : "it takes none";
  return `${target} is invalid (a parameter it does not take, whose name is not shown: ${known})`;
}

/** A console page that is not there: a browser gets the page, any other client the API's problem+json. */
export const notFound = (c: Context, title: string, message: string) =>
  refused(c, title, new EdgewiseError("not_found", message));

/**
 * A request validator (`validate(…)`) on a console page: what it refuses is a page for a browser and the API's
 * problem+json for any other client, as the console's other refusals. Only its own refusal: what the route
 * throws after it passed is the route's. `documented`: the route is in /openapi.json (only `GET /_console`, as
 * API.md lists it), so the validator's schema documents its parameters there; the other pages stay out of it.
 */
export function pageChecked<Check extends MiddlewareHandler>(
  check: Check,
  title: string,
  options: { documented?: boolean } = {},
): Check {
  const takes = (check as { [fieldNames]?: readonly string[] })[fieldNames] ?? [];
  const checked: MiddlewareHandler = async (c, next) => {
    let passed = false;
    try {
      return await check(c, async () => {
        passed = true;
        await next();
      });
    } catch (error) {
      if (passed || !(error instanceof EdgewiseError)) throw error;
      return refused(c, title, error, takes);
    }
  };
  if (!options.documented) return checked as Check;
  return Object.assign(checked, {
    [uniqueSymbol]: (check as Record<symbol, unknown>)[uniqueSymbol],
  }) as unknown as Check;
}

/**
 * A dependency the page needs is down (`unavailable`, 503): a browser gets a console page saying so, with the
 * error's Retry-After, logged at warn as the error handler logs a 503 for other clients (a dependency down, not a
 * bug); any other client gets the problem+json.
 */
export function unavailable(c: Context<GatewayEnv>, title: string, error: EdgewiseError, hint: string) {
  if (!wantsHtml(c)) throw error;
  c.var.log?.warn("request failed", { method: c.req.method, path: c.req.path, error: errorFields(error) });
  const retryAfter = error.meta?.retryAfterSeconds;
  if (typeof retryAfter === "number") c.header("Retry-After", String(retryAfter));
  return page(c, <Notice title={title} message={sentence(error.message)} hint={hint} />, 503);
}

/** An error's message as a sentence on a page: a capital first letter and a full stop. */
export function sentence(message: string): string {
  const text = `${message[0]?.toUpperCase() ?? ""}${message.slice(1)}`;
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** A browser's navigation asks for HTML; `fetch`, curl, EventSource and monitoring probes do not. */
export function wantsHtml(c: Context): boolean {
  return /\btext\/html\b/i.test(c.req.header("accept") ?? "");
}
