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
