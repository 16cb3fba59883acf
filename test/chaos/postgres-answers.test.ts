// What clients are answered while Postgres is gone: every read and write that needs it is a 503 (or a 504), never a
// 500 `internal`, from the first call that meets the outage through each half-open probe, and 200 once it is back.
import { afterAll, expect, test } from "bun:test";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "./fault-proxy.ts";
import { type InProcessNode, startInProcessNode } from "./nodes.ts";

const POSTGRES = { host: "127.0.0.1", port: Number(process.env.CHAOS_POSTGRES_PORT ?? 5432) };
let proxy: FaultProxy | undefined;
let running: InProcessNode | undefined;
afterAll(async () => {
  proxy?.setMode(Modes.pass);
  await running?.stop();
  await proxy?.close();
}, 30_000);

test("Postgres reset: reads, webhook management and API keys answer 503, not 500, until it returns", async () => {
  proxy = await startFaultProxy({ target: POSTGRES });
  running = await startInProcessNode("pg_answers", { DATABASE_URL: proxiedUrl(proxy) });
  const { client } = running;
  const token = await client.token();
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${running?.node.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const problem = (await response.json().catch(() => ({}))) as { code?: string };
    return `${method} ${path} ${response.status}${problem.code ? ` ${problem.code}` : ""}`;
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
  const failures = answers.filter(
    (answer) => !/ 503 (unavailable|breaker\.open)$| 504 timeout$/.test(answer),
  );
  expect(failures).toEqual([]);

  proxy.setMode(Modes.pass);
  // Once Postgres is back, a call can still meet a pooled connection the outage left dead and wait out its 5 s
  // timeout (504), which counts against the breaker and opens it for another 5 s: recovery took up to 25 s in
  // runs here, so the window is 45 s. Why the connection is left dead is not yet known.
  const deadline = Date.now() + 45_000;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await Promise.all(calls());
    if (last.every((answer) => / 20[01]$/.test(answer))) break;
    await Bun.sleep(500);
  }
  for (const answer of last) expect(answer).toMatch(/ 20[01]$/);
}, 90_000);
