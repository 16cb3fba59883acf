// Answers a node's serve adapter gives itself, before the app: a Host that is no authority, and their problem+json.
import { requestIdFor } from "../edge/middleware/request-id/index.ts";
import { apiSecurityHeaders } from "../edge/middleware/secure-headers/index.ts";
import { EdgewiseError, problemResponse } from "../shared/errors/index.ts";
import { isAuthority } from "./host-header.ts";

/**
 * The 400 for a request whose Host is no authority (RFC 9112 §3.2 asks a 400 of an invalid Host), before the app
 * sees the URL the runtime built from it; undefined for any other request (no Host, on HTTP/1.0, included).
 * Deno.serve builds request.url as `http://<Host><target>`, so such a Host could move the path. Bun keeps the bare
 * target when the Host has a delimiter, and builds `http://<Host>…` from one a URL parser refuses (`999.1.1.1`):
 * every `new URL(request.url)` behind it threw, a 500 and an error line for any outsider who sent one.
 */
export function hostRefusal(request: Request): Response | undefined {
  const host = request.headers.get("host");
  if (!host || isAuthority(host)) return undefined;
  // The target's path is what follows the Host in request.url (a URL parser would read the Host's `/` or `?` too),
  // or request.url itself where the runtime kept the bare target. Over TLS the runtimes write `https://`: with the
  // plain prefix alone, a TLS listener's 400 (an actor host's) lost its `instance`.
  const prefix = [`http://${host}`, `https://${host}`].find((scheme) => request.url.startsWith(scheme));
  const target = prefix ? request.url.slice(prefix.length) : request.url;
  return adapterProblem(
    request,
    new EdgewiseError(
      "request.invalid",
      "the Host header is not a host name or address with an optional port",
    ),
    target.startsWith("/") ? pathOf(`http://target${target}`) : undefined,
    [],
  );
}

/**
 * An answer given here, not by the app: with what the app gives every answer, an `X-Request-Id` (the caller's, when
 * sane) for the client to quote, the problem's `instance`, and the API's security headers.
 */
export function adapterProblem(
  request: Request,
  error: EdgewiseError,
  instance: string | undefined,
  extra: [string, string][],
): Response {
  const headers = new Headers([
    ...apiSecurityHeaders.map(([name, value]): [string, string] => [name, value]),
    ...extra,
  ]);
  headers.set("x-request-id", requestIdFor(request.headers.get("x-request-id")));
  return problemResponse(error, { ...(instance ? { instance } : {}), headers });
}

/** The path as sent, percent-encoding kept, as the app's error handler gives it; none when `url` is no URL. */
export function pathOf(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}
