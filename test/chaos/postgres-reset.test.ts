// Chaos (b): every Postgres connection reset for CHAOS_FAULT_SECONDS (default 30 s) while orders keep coming. The
// broker and billing live on Postgres, so publishes and deliveries fail and must be retried; once the fault ends,
// everything drains, nothing is lost or applied twice, and the invariants hold.
import { afterAll, test } from "bun:test";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "./fault-proxy.ts";
import { FAULT_SECONDS } from "./load.ts";
import { type InProcessNode, startInProcessNode } from "./nodes.ts";
import { expectScenarioHeld, runFaultScenario } from "./scenario.ts";

const POSTGRES = { host: "127.0.0.1", port: Number(process.env.CHAOS_POSTGRES_PORT ?? 5432) };
let proxy: FaultProxy | undefined;
let running: InProcessNode | undefined;
afterAll(async () => {
  proxy?.setMode(Modes.pass);
  await running?.stop();
  await proxy?.close();
}, 30_000);

test(
  `Postgres connections reset for ${FAULT_SECONDS} s under load: drains, nothing lost or applied twice`,
  async () => {
    proxy = await startFaultProxy({ target: POSTGRES });
    // Only the node goes through the proxy; the checks use a direct pool (running.sql).
    running = await startInProcessNode("chaos_pg", {
      DATABASE_URL: proxiedUrl(proxy),
    });
    const node = running;
    const faultProxy = proxy;
    const orderRate = 10;
    const { row, report } = await runFaultScenario({
      name: "postgres-reset",
      api: node.client,
      sql: node.sql,
      base: () => node.node.url,
      orders: Math.ceil(orderRate * (FAULT_SECONDS + 10)) + 20,
      orderRate,
      readRate: 20,
      seed: 2,
      inject: () => faultProxy.setMode(Modes.reset),
      heal: () => faultProxy.setMode(Modes.pass),
      drainTimeoutMs: 120_000,
      logs: () => node.logs,
      extra: () => ({ proxy: faultProxy.stats() }),
    });
    expectScenarioHeld(row, report);
  },
  (FAULT_SECONDS + 10 + 60 + 120 + 60) * 1000,
);
