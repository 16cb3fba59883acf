// A broker whose Postgres is reached through a fault proxy, for one test file: started before its tests, stopped after.
import { afterAll, beforeAll } from "bun:test";
import { connect, type Sql } from "../../deploy/local/broker/db.ts";
import { type Broker, startBroker } from "../../deploy/local/broker/index.ts";
import { type FaultProxy, Modes, proxiedUrl, startFaultProxy } from "../chaos/fault-proxy.ts";
import { dropSchema, postgresTarget, uniqueSchema } from "./helpers.ts";

export interface BrokerBehindProxy {
  readonly proxy: FaultProxy;
  readonly broker: Broker;
}

/** `log` receives the broker's log lines (none kept by default). */
export function useBrokerBehindProxy(
  name: string,
  log: (line: string) => void = () => {},
): BrokerBehindProxy {
  const schema = uniqueSchema(name);
  let proxy: FaultProxy | undefined;
  let pool: Sql | undefined;
  let broker: Broker | undefined;
  beforeAll(async () => {
    proxy = await startFaultProxy({ target: postgresTarget() });
    pool = await connect({ url: proxiedUrl(proxy), max: 2, schema });
    broker = await startBroker({ port: 0, sql: pool, timeScale: 0.001, log });
  });
  afterAll(async () => {
    proxy?.setMode(Modes.pass);
    await broker?.stop();
    await pool?.end({ timeout: 1 });
    await proxy?.close();
    await dropSchema(schema);
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the broker is not started");
    return value;
  };
  return {
    get proxy() {
      return started(proxy);
    },
    get broker() {
      return started(broker);
    },
  };
}
