// WWW-Authenticate challenges (RFC 6750 §3) for 401 answers, and the helper the app's error handler uses.

/** Credentials were sent and are no good. */
export const invalidTokenChallenge = 'Bearer error="invalid_token"';
/** No credentials, or a scheme we do not take: per RFC 6750 §3.1, no error code. */
export const bearerChallenge = "Bearer";

/**
 * For the app's error handler: gives every 401 a challenge, as API.md promises. The auth middleware has
 * already set `Bearer error="invalid_token"` on the context before throwing, which survives when the
 * handler answers with `c.body()`/`c.json()`; this adds the plain `Bearer` to 401s that lack one (e.g.
 * `requireScope` on an anonymous request, or a handler that builds its own `Response`).
 */
export function withAuthChallenge(response: Response): Response {
  if (response.status !== 401 || response.headers.has("www-authenticate")) return response;
  const headers = new Headers(response.headers);
  headers.set("WWW-Authenticate", bearerChallenge);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
