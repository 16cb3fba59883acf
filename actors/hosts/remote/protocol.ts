// The wire between a gateway and a remote actor host: paths, signature headers, and the signed message.
export const actorHostPaths = { ask: "/_edgewise/actors/ask", receive: "/_edgewise/actors/receive" } as const;

/** A signed request that touches no actor: a gateway's /readyz proves the hop, its TLS and the shared secret. */
export const actorHostPingPath = "/_edgewise/actors/ping";

export const signatureHeaders = {
  timestamp: "x-edgewise-timestamp",
  signature: "x-edgewise-signature",
} as const;

/** How far a signed request's timestamp may be from the receiver's clock. */
export const signatureToleranceMs = 60_000;

/** What is signed: the path (so an ask can't be replayed as a receive), the timestamp, and the exact body. */
export const signedMessage = (path: string, timestamp: string, body: string) =>
  `${path}\n${timestamp}\n${body}`;
