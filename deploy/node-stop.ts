// The order a node stops in: readiness fails, HTTP drains, deliveries pause, the actors stop, then the rest.
import type { LocalActorHost } from "../actors/hosts/local/index.ts";
import type { Config } from "../shared/config/index.ts";
import type { Logger } from "../shared/telemetry/log/index.ts";
import type { Broker } from "./local/broker/index.ts";
import type { HttpTraffic } from "./node-listener.ts";
import type { RunningServer } from "./serve.ts";

/** Closes one thing the node opened; a node's stops run in the reverse order of opening. */
export type Stop = () => Promise<unknown> | unknown;

export interface NodeStopParts {
  config: Config;
  logger: Logger;
  traffic: HttpTraffic;
  /** Ends the console's live streams. */
  consoleShutdown: AbortController;
  server: RunningServer;
  httpDrainMs: number;
  broker: Broker | undefined;
  host: LocalActorHost | undefined;
  /** Everything else the node opened, in the order it opened them. */
  stops: Stop[];
}

export async function stopNode(parts: NodeStopParts): Promise<void> {
  const { config, logger, traffic, consoleShutdown, server, httpDrainMs, broker, host, stops } = parts;
  // Readiness fails first, and the node keeps serving while load balancers notice (EDGEWISE_SHUTDOWN_DELAY).
  traffic.draining = true;
  logger.info("stopping: /readyz answers 503 draining", { delay_ms: config.EDGEWISE_SHUTDOWN_DELAY });
  if (config.EDGEWISE_SHUTDOWN_DELAY > 0) await sleep(config.EDGEWISE_SHUTDOWN_DELAY);
  // The console's live streams never end on their own: end them, or the server's graceful stop waits.
  consoleShutdown.abort();
  await drainServer(server, () => traffic.requestsUnderWay, httpDrainMs, logger);
  // The embedded broker's deliveries under way finish while the actors are still there; no new one starts.
  await broker?.pauseDeliveries();
  await host?.stop();
  for (const stop of stops.reverse()) await stop();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Stops listening and lets the requests under way finish, for up to `drainMs`; then closes the connections still
 * open (an upload that never ends, a client that stopped reading), so a stop is bounded.
 */
async function drainServer(
  server: RunningServer,
  underWay: () => number,
  drainMs: number,
  logger: Logger,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const finished = await Promise.race([
    server.stop().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), drainMs);
    }),
  ]);
  clearTimeout(timer);
  if (finished) return;
  logger.warn("stopping: requests still under way after the drain; closing their connections", {
    requests: underWay(),
    drain_ms: drainMs,
  });
  await server.stop(true);
}
