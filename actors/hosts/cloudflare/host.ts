// The host port on Workers: reaches each actor's Durable Object by `idFromName(key)` and unwraps RPC outcomes.
import { type Envelope, parseEnvelope } from "../../../shared/envelope/index.ts";
import { EdgewiseError, toEdgewiseError } from "../../../shared/errors/index.ts";
import { activeTraceHeaders } from "../../../shared/telemetry/trace/index.ts";
import {
  type ActorAddress,
  type ActorHost,
  type AskOptions,
  askEnvelope,
  assertValidKey,
  type TurnOutcome,
  targetOf,
  type ActorSnapshot,
} from "../../runtime/index.ts";
import type { ActorRpcOutcome, DurableActorRpc } from "./actor-object.ts";
import { rpc } from "./rpc-errors.ts";

/** The slice of a `DurableObjectNamespace` binding the host uses. */
export interface ActorNamespace {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): unknown;
}

export class DurableObjectHost implements ActorHost {
  /** `namespaces` maps each actor type to the binding of its `durableActor` class. */
  constructor(private readonly namespaces: Readonly<Record<string, ActorNamespace>>) {}

  get actorTypes(): string[] {
    return Object.keys(this.namespaces);
  }

  /**
   * `onlyIfState` is ignored: a Durable Object stub cannot tell whether its object has state without activating
   * it (the object's own storage is the only place that knows), so the ask runs and the actor answers itself.
   */
  async ask(address: ActorAddress, type: string, data: unknown, options?: AskOptions): Promise<TurnOutcome> {
    const stub = this.stub(address);
    return unwrap(await rpc(() => stub.ask(askEnvelope(address, type, data, options), activeTraceHeaders())));
  }

  async receive(input: Envelope): Promise<TurnOutcome> {
    const envelope = parseEnvelope(input);
    const stub = this.stub(targetOf(envelope));
    return unwrap(await rpc(() => stub.receive(envelope, activeTraceHeaders())));
  }

  inspect(address: ActorAddress): Promise<ActorSnapshot> {
    return this.stub(address).inspect();
  }

  /** The stub of one actor's object, after checking its type and key (so nothing is created for bad ones). */
  stub(address: ActorAddress): DurableActorRpc {
    const namespace = Object.hasOwn(this.namespaces, address.type)
      ? this.namespaces[address.type]
      : undefined;
    if (!namespace) {
      throw new EdgewiseError("actor.unknown_type", `no actor type "${address.type}" is registered`);
    }
    assertValidKey(address.key);
    return namespace.get(namespace.idFromName(address.key)) as DurableActorRpc;
  }
}

function unwrap(outcome: ActorRpcOutcome): TurnOutcome {
  if (!outcome.ok) throw toEdgewiseError(outcome.error);
  return { duplicate: outcome.duplicate, reply: outcome.reply };
}
