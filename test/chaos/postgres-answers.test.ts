// What clients are answered while Postgres is gone: every read and write that needs it is a 503 (or a 504), never a
// 500 `internal`, from the first call that meets the outage through each half-open probe, and 200 once it is back.
import { afterAll, test } from "bun:test";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "./fault-proxy.ts";
import { type InProcessNode, startInProcessNode } from "./nodes.ts";
import { chaosPostgres, expectPostgresAnswers } from "./postgres-answers.ts";

let proxy: FaultProxy | undefined;
let running: InProcessNode | undefined;
afterAll(async () => {
  proxy?.setMode(Modes.pass);
  await running?.stop();
  await proxy?.close();
}, 30_000);

test("Postgres reset: reads, webhook management and API keys answer 503, not 500, until it returns", async () => {
  proxy = await startFaultProxy({ target: chaosPostgres });
  running = await startInProcessNode("pg_answers", { DATABASE_URL: proxiedUrl(proxy) });
  const node = running.node;
  const token = await running.client.token();
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${node.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const problem = (await response.json().catch(() => ({}))) as { code?: string };
    return `${method} ${path} ${response.status}${problem.code ? ` ${problem.code}` : ""}`;
  };
  // Back once the breaker's last failed probe has aged 5 s: about 4 s after Postgres returns, at most 5.5, so 15 s
  // leaves a loaded machine room. Recovery took 4 to 26 s here while a reset could leave a pooled connection unable
  // to connect again: a call given it waited out its 5 s timeout (504) and opened the breaker once more
  // (deploy/patches/postgres-unsent-write.mjs).
  await expectPostgresAnswers(call, proxy, 15_000);
}, 90_000);
