// The Worker while Postgres is gone (wrangler dev): reads, webhook management and API keys answer 503, never 500.
import { afterAll, test } from "bun:test";
import { createSchema, dropSchema, uniqueSchema } from "../broker/helpers.ts";
import { type CommerceWorker, startCommerceWorker } from "../commerce/workerd-node.ts";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "./fault-proxy.ts";
import { chaosPostgres, expectPostgresAnswers } from "./postgres-answers.ts";
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
  proxy = await startFaultProxy({ target: chaosPostgres });
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
  // POST /v1/api-keys was a 500 `internal` on every call before: its store was neither behind the breaker nor mapped.
  // 15 s to recover, as this test has always allowed (the Worker opens a pool per request).
  await expectPostgresAnswers(call, proxy, 15_000);
}, 90_000);
