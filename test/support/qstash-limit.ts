// Test support: the answer Upstash's QStash gives a publish once the plan's daily limit is spent.

/** QStash's 429 for a spent daily limit: its RateLimit-* headers, the reset at `resetAt` (seconds since the epoch). */
export function dailyLimitAnswer(resetAt: number): Response {
  return new Response("daily limit exceeded", {
    status: 429,
    headers: {
      "RateLimit-Limit": "500",
      "RateLimit-Remaining": "0",
      "RateLimit-Reset": String(resetAt),
    },
  });
}

export interface QueueStandIn {
  url: string;
  /** The reset its 429s name: an hour after it started (seconds since the epoch). */
  resetAt: number;
  /** While `limited`, every publish is answered `dailyLimitAnswer`; otherwise taken (a message id each). */
  state: { limited: boolean };
  stop(): void;
}

/** A QStash stand-in on loopback that takes publishes (and answers `/v2/keys`), or refuses them for its daily limit. */
export function queueStandIn(options: { limited: boolean }): QueueStandIn {
  const resetAt = Math.floor(Date.now() / 1000) + 3_600;
  const state = { limited: options.limited };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      if (new URL(request.url).pathname === "/v2/keys") return Response.json({});
      if (state.limited) return dailyLimitAnswer(resetAt);
      const batch = (await request.json()) as unknown[];
      return Response.json(batch.map((_, n) => ({ messageId: `msg_${n}` })));
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, resetAt, state, stop: () => server.stop(true) };
}
