// The Worker while Postgres is gone (wrangler dev): reads, webhook management and API keys answer 503, never 500.
import { afterAll, expect, test } from "bun:test";
import { createSchema, dropSchema, uniqueSchema } from "../broker/helpers.ts";
import { type CommerceWorker, startCommerceWorker } from "../commerce/workerd-node.ts";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "./fault-proxy.ts";

const POSTGRES = { host: "127.0.0.1", port: Number(process.env.CHAOS_POSTGRES_PORT ?? 5432) };
const schema = uniqueSchema("pg_answers_cf");
let proxy: FaultProxy | undefined;
let running: CommerceWorker | undefined;
afterAll(async () => {
  proxy?.setMode(Modes.pass);
  await running?.stop();
  await proxy?.close();
  await dropSchema(schema);
}, 30_000);

test("Postgres reset on Workers: reads, webhook management and API keys answer 503, not 500", async () => {
  proxy = await startFaultProxy({ target: POSTGRES });
  await createSchema(schema);
  running = await startCommerceWorker("pg_answers_cf", {
    DATABASE_URL: `${proxiedUrl(proxy)}?search_path=${schema}`,
  });
  const { client } = running;
  const call = async (method: string, path: string, body?: unknown) => {
    const reply = await client.call(method, path, body === undefined ? {} : { body });
    const { code } = reply.body as { code?: string };
    return `${method} ${path} ${reply.status}${code ? ` ${code}` : ""}`;
  };
  const calls = () => [
    call("GET", "/v1/orders?limit=1"),
    call("GET", "/v1/activity?limit=1"),
    call("GET", "/v1/webhooks/subscriptions"),
    call("POST", "/v1/api-keys", { sub: "pg-answers", scopes: ["orders:read"] }),
  ];
  for (const answer of await Promise.all(calls())) expect(answer).toMatch(/ 20[01]$/);

  proxy.setMode(Modes.reset);
  const answers: string[] = [];
  // The first calls meet the outage before the breaker opens; past its 5 s reset, a probe meets it again.
  const until = Date.now() + 6_500;
  while (Date.now() < until) {
    answers.push(...(await Promise.all(calls())));
    await Bun.sleep(250);
  }
  // POST /v1/api-keys was a 500 `internal` on every call before: its store was neither behind the breaker nor mapped.
  const failures = answers.filter(
    (answer) => !/ 503 (unavailable|breaker\.open)$| 504 timeout$/.test(answer),
  );
  expect(failures).toEqual([]);

  proxy.setMode(Modes.pass);
  const deadline = Date.now() + 15_000;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await Promise.all(calls());
    if (last.every((answer) => / 20[01]$/.test(answer))) break;
    await Bun.sleep(500);
  }
  for (const answer of last) expect(answer).toMatch(/ 20[01]$/);
}, 90_000);
