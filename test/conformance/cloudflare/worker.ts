// The conformance Worker: the fixture actors as Durable Objects, served over the control protocol.
import { DurableObjectHost, durableActor } from "../../../actors/hosts/cloudflare/index.ts";
import { counter, profileV1, profileV2, sleeper } from "../fixtures.ts";
import { type ControlTarget, controlHandler, outcomeOf } from "../protocol.ts";
import { Sink, sinkTransport } from "./sink.ts";

interface Env {
  COUNTER: DurableObjectNamespace;
  PROFILE: DurableObjectNamespace;
  /** `sleeper`: no time limit of its own, so the host's (EDGEWISE_TURN_TIMEOUT) applies. */
  SLEEPER: DurableObjectNamespace;
  SINK: DurableObjectNamespace<Sink>;
  /** "2" runs profile's schema version 2 (a restart with `--var PROFILE_VERSION:2` migrates stored v1 state). */
  PROFILE_VERSION?: string;
  /** "off": no transport, as a Worker deployed before QSTASH_URL was set (test/conformance/wake-workerd.test.ts). */
  RELAY?: string;
}

const options = {
  transport: (env: Env) => (env.RELAY === "off" ? undefined : sinkTransport(env.SINK)),
  relayPolicy: { batchSize: 256, baseDelayMs: 50, maxDelayMs: 500 },
  onBackgroundError: () => {},
};

export const Counter = durableActor<Env>(counter, options);
export const Profile = durableActor<Env>(
  (env) => (env.PROFILE_VERSION === "2" ? profileV2 : profileV1),
  options,
);
export const Sleeper = durableActor<Env>(sleeper, options);
export { Sink };

function controlTarget(env: Env): ControlTarget {
  const host = new DurableObjectHost({ counter: env.COUNTER, profile: env.PROFILE, sleeper: env.SLEEPER });
  const sink = () => env.SINK.get(env.SINK.idFromName("sink"));
  return {
    ask: (type, key, message, data, id) =>
      outcomeOf(() => host.ask({ type, key }, message, data, id ? { id } : {})),
    receive: (envelope) => outcomeOf(() => host.receive(envelope)),
    inspect: (type, key) => host.inspect({ type, key }),
    sent: () => sink().sent(),
    setTransportFailing: (failing) => sink().setFailing(failing),
  };
}

export default {
  fetch: (request, env) => controlHandler(controlTarget(env))(request),
} satisfies ExportedHandler<Env>;
