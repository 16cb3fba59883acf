// What both postgres-answers tests (a node, a Worker) assert: 2xx, then only 503/504 while Postgres is reset, then 2xx.
import { expect } from "bun:test";
import { type FaultProxy, Modes } from "./fault-proxy.ts";

/** Where the chaos tests' Postgres listens (the fault proxy's target). */
export const chaosPostgres = { host: "127.0.0.1", port: Number(process.env.CHAOS_POSTGRES_PORT ?? 5432) };

/** One call as `METHOD path status[ code]`, the problem's code when there is one. */
export type AnsweredCall = (method: string, path: string, body?: unknown) => Promise<string>;

/**
 * Reads, webhook management and API keys, with Postgres up, then reset for 6.5 s (the first calls meet the outage
 * before the breaker opens; past its 5 s reset, a probe meets it again), then back for at most `recoveryMs`.
 */
export async function expectPostgresAnswers(call: AnsweredCall, proxy: FaultProxy, recoveryMs: number) {
  const calls = () => [
    call("GET", "/v1/orders?limit=1"),
    call("GET", "/v1/activity?limit=1"),
    call("GET", "/v1/webhooks/subscriptions"),
    call("POST", "/v1/api-keys", { sub: "pg-answers", scopes: ["orders:read"] }),
  ];
  for (const answer of await Promise.all(calls())) expect(answer).toMatch(/ 20[01]$/);

  proxy.setMode(Modes.reset);
  const answers: string[] = [];
  const until = Date.now() + 6_500;
  while (Date.now() < until) {
    answers.push(...(await Promise.all(calls())));
    await Bun.sleep(250);
  }
  const failures = answers.filter(
    (answer) => !/ 503 (unavailable|breaker\.open)$| 504 timeout$/.test(answer),
  );
  expect(failures).toEqual([]);

  proxy.setMode(Modes.pass);
  const deadline = Date.now() + recoveryMs;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await Promise.all(calls());
    if (last.every((answer) => / 20[01]$/.test(answer))) break;
    await Bun.sleep(500);
  }
  for (const answer of last) expect(answer).toMatch(/ 20[01]$/);
}
