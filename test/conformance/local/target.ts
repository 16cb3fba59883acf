// Adapts a LocalActorHost (Bun or Deno) to the conformance control protocol.
import type { Envelope } from "../../../shared/envelope/index.ts";
import type { LocalActorHost } from "../../../actors/hosts/local/index.ts";
import type { RecordingTransport } from "../../support/memory-transport.ts";
import { type ControlTarget, outcomeOf } from "../protocol.ts";

export function localTarget(host: LocalActorHost, transport: RecordingTransport): ControlTarget {
  return {
    ask: (type, key, message, data, id) =>
      outcomeOf(() => host.ask({ type, key }, message, data, id ? { id } : {})),
    receive: (envelope) => outcomeOf(() => host.receive(envelope)),
    inspect: async (type, key) => host.inspect({ type, key }),
    sent: async (): Promise<Envelope[]> => transport.sent,
    setTransportFailing: async (failing) => {
      transport.failing = failing;
    },
  };
}
