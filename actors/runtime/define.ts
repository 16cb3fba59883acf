// The API for defining an actor: a state schema, message schemas, and a typed handler per message type.
import type * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { isValidActorType } from "./address.ts";
import type { TurnContext } from "./context.ts";

// biome-ignore lint/suspicious/noExplicitAny: valibot's own schema bound; `unknown` would reject every schema.
export type Schema = v.GenericSchema<any, any>;
export type MessageSchemas = Record<string, Schema>;

export type HandlerMap<S extends Schema, M extends MessageSchemas> = {
  [K in keyof M]: (ctx: TurnContext<v.InferOutput<S>>, data: v.InferOutput<M[K]>) => unknown;
};

/** Upgrades state written by version `n - 1` to version `n`; the result is validated against `state`. */
export type Migration = (previous: unknown) => unknown;

export interface ActorDefinitionInput<
  S extends Schema,
  M extends MessageSchemas,
  H extends HandlerMap<S, M>,
> {
  /** Lowercase, `[a-z][a-z0-9-]*`: it appears in addresses, URLs and storage. */
  type: string;
  state: S;
  /** State of an actor that has never committed a turn. */
  initial: (key: string) => v.InferOutput<S>;
  /** Current state schema version; stored state of an older version is migrated on activation. */
  version?: number;
  /** `migrations[n]` turns version `n - 1` into version `n`. */
  migrations?: Record<number, Migration>;
  messages: M;
  handlers: H;
  /**
   * How long one turn may take, in ms; the host's default (30 s on a node, `EDGEWISE_TURN_TIMEOUT`) when unset.
   * A handler still running then fails its turn with `actor.turn_timeout`, commits nothing, and frees the mailbox.
   */
  turnTimeoutMs?: number;
}

export interface ActorDefinition<
  S extends Schema = Schema,
  M extends MessageSchemas = MessageSchemas,
  H extends HandlerMap<S, M> = HandlerMap<S, M>,
> {
  readonly type: string;
  readonly state: S;
  readonly initial: (key: string) => v.InferOutput<S>;
  readonly version: number;
  readonly migrations: Readonly<Record<number, Migration>>;
  readonly messages: M;
  readonly handlers: H;
  readonly turnTimeoutMs?: number;
}

// biome-ignore lint/suspicious/noExplicitAny: erases a definition's type parameters for registries.
export type AnyActorDefinition = ActorDefinition<Schema, MessageSchemas, any>;

/** The message types an actor accepts. */
export type MessageType<D> = D extends ActorDefinition<Schema, infer M> ? keyof M & string : never;

/** What `ask` resolves to for one message type: the handler's return value, awaited. */
export type ReplyOf<D, K> =
  D extends ActorDefinition<Schema, MessageSchemas, infer H>
    ? K extends keyof H
      ? // biome-ignore lint/suspicious/noExplicitAny: matches any handler signature.
        H[K] extends (...args: any[]) => infer R
        ? Awaited<R>
        : never
      : never
    : never;

/** The input a message type takes. */
export type DataOf<D, K> =
  D extends ActorDefinition<Schema, infer M> ? (K extends keyof M ? v.InferInput<M[K]> : never) : never;

export function defineActor<S extends Schema, M extends MessageSchemas, H extends HandlerMap<S, M>>(
  input: ActorDefinitionInput<S, M, H>,
): ActorDefinition<S, M, H> {
  if (!isValidActorType(input.type)) {
    throw new EdgewiseError("config.invalid", `actor type "${input.type}" must match [a-z][a-z0-9-]{0,63}`);
  }
  const version = input.version ?? 1;
  if (!Number.isInteger(version) || version < 1) {
    throw new EdgewiseError("config.invalid", `actor "${input.type}": version must be an integer >= 1`);
  }
  for (let step = 2; step <= version; step++) {
    if (!input.migrations?.[step]) {
      throw new EdgewiseError(
        "config.invalid",
        `actor "${input.type}": missing migration to version ${step}`,
      );
    }
  }
  const { turnTimeoutMs } = input;
  if (turnTimeoutMs !== undefined && !(Number.isInteger(turnTimeoutMs) && turnTimeoutMs > 0)) {
    throw new EdgewiseError(
      "config.invalid",
      `actor "${input.type}": turnTimeoutMs must be a whole number of ms above 0`,
    );
  }
  for (const name of Object.keys(input.messages)) {
    if (typeof (input.handlers as Record<string, unknown>)[name] !== "function") {
      throw new EdgewiseError("config.invalid", `actor "${input.type}": no handler for message "${name}"`);
    }
  }
  return Object.freeze({
    type: input.type,
    state: input.state,
    initial: input.initial,
    version,
    migrations: Object.freeze({ ...(input.migrations ?? {}) }),
    messages: input.messages,
    handlers: input.handlers,
    ...(turnTimeoutMs === undefined ? {} : { turnTimeoutMs }),
  });
}
