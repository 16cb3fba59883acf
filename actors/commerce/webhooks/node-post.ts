// The webhook POST over node:http(s) (Bun and Deno): it connects only to the addresses the SSRF guard approved.
import type { LookupAddress, LookupOptions } from "node:dns";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { type PostWebhook, type WebhookAnswer, webhookAnswer } from "./post.ts";

export interface NodeHttpPostOptions {
  /** Trust anchors (PEM) that replace the runtime's CA store: for tests with their own CA. */
  ca?: string | string[];
}

type LookupCallback = (error: Error | null, address: string | LookupAddress[], family?: number) => void;

const familyOf = (address: string) => (address.includes(":") ? 6 : 4);

/**
 * A `lookup` that answers the checked addresses and never asks DNS. The request keeps the URL's name, so the
 * Host header, TLS SNI and certificate verification still use it. Bun 1.4 and Deno 2.9 honour `lookup` on
 * node:http and node:https (both ask with `all: true` and try the addresses in turn), as Node does;
 * post-cases.ts checks it on each.
 */
function pinnedLookup(hostname: string, addresses: readonly string[]) {
  const entries = addresses.map((text) => {
    const address = text.replace(/^\[(.*)\]$/, "$1");
    return { address, family: familyOf(address) };
  });
  return (name: string, options: LookupOptions, callback: LookupCallback): void => {
    const wanted = options.family === 4 || options.family === 6 ? options.family : undefined;
    const usable = entries.filter((entry) => wanted === undefined || entry.family === wanted);
    // Only this request's own host is ever looked up through it; anything else is refused, not resolved.
    if (name !== hostname || usable.length === 0) {
      const error = Object.assign(new Error(`${name} has no checked address`), { code: "ENOTFOUND" });
      callback(error, "");
      return;
    }
    if (options.all) callback(null, usable);
    else callback(null, usable[0]!.address, usable[0]!.family);
  };
}

/** A POST that pins the connection to the check's addresses; `options.ca` is for tests. */
export function nodeHttpPost(options: NodeHttpPostOptions = {}): PostWebhook {
  return ({ url, addresses, headers, body, signal }) =>
    new Promise<WebhookAnswer>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const bytes = new TextEncoder().encode(body);
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const request = send(
        url,
        {
          method: "POST",
          headers: { ...headers, "content-length": String(bytes.byteLength) },
          // A connection of its own: a pooled one may have been opened to an address an earlier check approved.
          agent: false,
          // Empty under WEBHOOKS_ALLOW_PRIVATE: nothing is refused for its address, so the runtime resolves.
          ...(addresses.length > 0 ? { lookup: pinnedLookup(url.hostname, addresses) } : {}),
          ...(options.ca === undefined ? {} : { ca: options.ca }),
        },
        (response) => {
          signal.removeEventListener("abort", abort);
          // Only the status matters; the body is not read, so a huge or endless one costs nothing.
          response.destroy();
          const retryAfter = response.headers["retry-after"];
          resolve(
            webhookAnswer(response.statusCode ?? 0, typeof retryAfter === "string" ? retryAfter : undefined),
          );
        },
      );
      // Redirects are not followed: node:http never does.
      const abort = () => request.destroy(signal.reason);
      signal.addEventListener("abort", abort, { once: true });
      request.on("error", (error) => {
        signal.removeEventListener("abort", abort);
        reject(signal.aborted ? signal.reason : error);
      });
      request.end(bytes);
    });
}

/** What the Bun and Deno entries inject: the runtime's CA store. */
export const postWithNodeHttp: PostWebhook = nodeHttpPost();
