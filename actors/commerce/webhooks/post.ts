// The HTTP port of webhook delivery: one POST to a target the SSRF guard approved, answering its status.

export interface WebhookPostRequest {
  /** The subscription's URL as the guard parsed it: its host is the Host header, TLS SNI and certificate name. */
  url: URL;
  /**
   * The addresses the guard approved for `url`'s host: connect to one of them, never to a new lookup's answer.
   * Empty when WEBHOOKS_ALLOW_PRIVATE skipped the lookup: no address would be refused, so none is pinned.
   */
  addresses: readonly string[];
  headers: Record<string, string>;
  body: string;
  /** Aborting it closes the connection, and the post rejects with `signal.reason`. */
  signal: AbortSignal;
}

/** What the receiver answered: its status, and its `Retry-After` header as sent, if any (a 429's or a 503's). */
export interface WebhookAnswer {
  status: number;
  retryAfter?: string;
}

/**
 * The port: resolves with the response's status (and Retry-After), or rejects when there is none (network, TLS,
 * abort). Redirects are never followed (a 3xx could point anywhere, including inside) and the body is never read.
 * Runtime-specific where it pins the connection, so the entry injects it (node-post.ts for Bun and Deno).
 */
export type PostWebhook = (request: WebhookPostRequest) => Promise<WebhookAnswer>;

/** The answer of a status and a Retry-After header value (absent or empty: none). */
export const webhookAnswer = (status: number, retryAfter: string | null | undefined): WebhookAnswer =>
  retryAfter ? { status, retryAfter } : { status };

/**
 * `fetch`, which resolves the name again on its own: the check's addresses are not pinned. For Cloudflare
 * Workers, whose fetch has no option to choose the address. A deployed Worker's subrequests leave from
 * Cloudflare's network, which cannot reach your loopback or private networks (only a binding such as a tunnel
 * can), so a rebound name has nothing of yours to reach. Under `wrangler dev` workerd runs on your machine,
 * which it can reach: a local Worker is not pinned.
 */
export const postWithFetch: PostWebhook = async ({ url, headers, body, signal }) => {
  const response = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal });
  // Only the status matters; the body is not read, so a huge or endless one costs nothing.
  await response.body?.cancel().catch(() => {});
  return webhookAnswer(response.status, response.headers.get("retry-after"));
};
