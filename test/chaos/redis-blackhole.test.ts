// Chaos (a): Redis blackholed for CHAOS_FAULT_SECONDS (default 30 s) under load. The rate limiter falls back to
// its local limiter (RATE_LIMIT_ON_REDIS_FAILURE=open) and reads bypass the cache: no request may hang past
// REQUEST_TIMEOUT, no order may be lost, and the invariants hold once the queue drains.
import { afterAll, test } from "bun:test";
import { type FaultProxy, Modes, startFaultProxy } from "./fault-proxy.ts";
import { FAULT_SECONDS } from "./load.ts";
import { type InProcessNode, startInProcessNode } from "./nodes.ts";
import { expectScenarioHeld, runFaultScenario } from "./scenario.ts";

const REDIS = { host: "127.0.0.1", port: Number(process.env.CHAOS_REDIS_PORT ?? 6379) };
let proxy: FaultProxy | undefined;
let running: InProcessNode | undefined;
afterAll(async () => {
  await running?.stop();
  await proxy?.close();
}, 30_000);

test(
  `Redis blackholed for ${FAULT_SECONDS} s under load: no hang past REQUEST_TIMEOUT, nothing lost`,
  async () => {
    proxy = await startFaultProxy({ target: REDIS });
    running = await startInProcessNode("chaos_redis", {
      REDIS_URL: `redis://${proxy.address}`,
      RATE_LIMIT_ON_REDIS_FAILURE: "open",
    });
    const node = running;
    const faultProxy = proxy;
    const orderRate = 10;
    const { row, report } = await runFaultScenario({
      name: "redis-blackhole",
      api: node.client,
      sql: node.sql,
      base: () => node.node.url,
      orders: Math.ceil(orderRate * (FAULT_SECONDS + 10)) + 20,
      orderRate,
      readRate: 25,
      seed: 1,
      inject: () => faultProxy.setMode(Modes.blackhole),
      heal: () => faultProxy.setMode(Modes.pass),
      drainTimeoutMs: 60_000,
      logs: () => node.logs.filter((l) => /redis|rate limiter|cache/i.test(l.line)),
      extra: () => ({ proxy: faultProxy.stats() }),
    });
    expectScenarioHeld(row, report);
  },
  (FAULT_SECONDS + 10 + 60 + 120 + 60) * 1000,
);
