// The broker's own /healthz and /readyz: no token needed, and /readyz follows its Postgres, which /v2/keys does not.
import { expect, test } from "bun:test";
import { Modes } from "../chaos/fault-proxy.ts";
import { useBrokerBehindProxy } from "./behind-proxy.ts";
import { call, waitFor } from "./helpers.ts";

const fixture = useBrokerBehindProxy("health");

test("/healthz and /readyz answer without a token; /readyz is 503 while Postgres is gone, 200 once it is back", async () => {
  expect(await call(fixture.broker, "/healthz", { token: null })).toEqual({
    status: 200,
    body: { status: "ok" },
  });
  expect(await call(fixture.broker, "/readyz", { token: null })).toEqual({
    status: 200,
    body: { status: "ready", database: { ok: true } },
  });
  expect((await call(fixture.broker, "/readyz", { method: "POST", token: null })).status).toBe(405);

  // Not in the same instant as a query's answer: a connection reset right then makes Bun's socket report an
  // unhandled rejection of its own (a known gap, noted with the pool in pg-socket.ts), which is not this test's.
  await Bun.sleep(300);
  fixture.proxy.setMode(Modes.reset);
  const down = await call(fixture.broker, "/readyz", { token: null });
  expect(down.status).toBe(503);
  expect(down.body).toMatchObject({ status: "unavailable", database: { ok: false } });
  // What a node's /readyz asks (and all QStash has): it answers without the database, so it cannot tell.
  expect((await call(fixture.broker, "/v2/keys")).status).toBe(200);

  fixture.proxy.setMode(Modes.pass);
  await waitFor(
    async () => (await call(fixture.broker, "/readyz", { token: null })).status === 200,
    15_000,
    "ready again",
  );
}, 30_000);
