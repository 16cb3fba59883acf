// Chaos (c): the broker runs as its own process (`npm run broker`); it is SIGKILLed mid-load, stays down for
// CHAOS_FAULT_SECONDS (default 30 s), and restarts on the same port and Postgres schema. The actors' outboxes and
// billing's outbox keep every message meanwhile; once it is back, everything drains and the invariants hold.
import { afterAll, test } from "bun:test";
import type { Started } from "../e2e/process.ts";
import { restartablePort } from "../support/ports.ts";
import { FAULT_SECONDS } from "./load.ts";
import {
  devBrokerEnv,
  type InProcessNode,
  startBrokerProcess,
  startInProcessNode,
  uniqueSchema,
} from "./nodes.ts";
import { expectScenarioHeld, runFaultScenario } from "./scenario.ts";

const schema = uniqueSchema("chaos_broker");
// The broker restarts on it after the fault: outside the ephemeral range, so no outgoing connection takes it meanwhile.
const brokerPort = restartablePort();
const brokerUrl = `http://127.0.0.1:${brokerPort}`;
let broker: Started | undefined;
let running: InProcessNode | undefined;
afterAll(async () => {
  await running?.stop(); // drops the schema, the broker's tables with it
  await broker?.kill("SIGKILL");
}, 30_000);

test(
  `the broker SIGKILLed mid-load and restarted after ${FAULT_SECONDS} s: nothing lost or applied twice`,
  async () => {
    broker = await startBrokerProcess({ port: brokerPort, schema });
    // The node's tables and the broker's share one schema, so the checks see the broker's queue and DLQ too.
    running = await startInProcessNode("chaos_broker", devBrokerEnv(brokerUrl), { schema });
    const node = running;
    let restartMs = 0;
    let recoveredLine = "";
    const orderRate = 10;
    const { row, report } = await runFaultScenario({
      name: "broker-kill",
      api: node.client,
      sql: node.sql,
      base: () => node.node.url,
      orders: Math.ceil(orderRate * (FAULT_SECONDS + 10)) + 20,
      orderRate,
      readRate: 20,
      seed: 3,
      inject: async () => {
        await broker?.kill("SIGKILL");
      },
      heal: async () => {
        const started = Date.now();
        broker = await startBrokerProcess({ port: brokerPort, schema });
        restartMs = Date.now() - started;
        recoveredLine = /Recovered .*/.exec(broker.output())?.[0] ?? "";
      },
      drainTimeoutMs: 90_000,
      logs: () => node.logs,
      extra: () => ({ brokerRestartMs: restartMs, brokerRecovered: recoveredLine }),
    });
    expectScenarioHeld(row, report);
  },
  (FAULT_SECONDS + 10 + 60 + 120 + 60) * 1000,
);
