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
  // Once Postgres is back, a call can still meet a pooled connection the outage left dead and wait out its 5 s
  // timeout (504), which counts against the breaker and opens it for another 5 s: recovery took 4 to 26 s in ten
  // runs here, so the window is 45 s. Why the connection is left dead is not yet known.
  await expectPostgresAnswers(call, proxy, 45_000);
}, 90_000);
