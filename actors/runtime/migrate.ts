// State schema migrations, applied on activation: stored version n runs migrations n+1..current in order.
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { validationError } from "../../shared/errors/valibot.ts";
import type { AnyActorDefinition } from "./define.ts";
import type { StoredState } from "./storage.ts";

export interface ActivatedState {
  state: unknown;
  /** True when the stored state was migrated and must be written back. */
  migrated: boolean;
}

export function activateState(
  definition: AnyActorDefinition,
  key: string,
  stored: StoredState | undefined,
): ActivatedState {
  if (!stored) return { state: validateState(definition, definition.initial(key)), migrated: false };
  if (stored.version > definition.version) {
    // Not poison: a delivery answered 503 stays in the queue (retried with backoff) while the rollout that
    // wrote this state is rolled forward again; 489 would have dead-lettered it at once.
    throw new EdgewiseError(
      "state.newer_than_code",
      `${definition.type}/${key}: stored state is version ${stored.version}, newer than the code's ${definition.version}; refusing to downgrade`,
    );
  }
  let state = stored.state;
  for (let step = stored.version + 1; step <= definition.version; step++) {
    const migration = definition.migrations[step];
    if (!migration)
      throw new EdgewiseError("state.migration_failed", `${definition.type}: no migration to ${step}`);
    try {
      state = migration(state);
    } catch (cause) {
      throw new EdgewiseError(
        "state.migration_failed",
        `${definition.type}/${key}: migration to ${step} threw`,
        {
          cause,
        },
      );
    }
  }
  return { state: validateState(definition, state), migrated: stored.version !== definition.version };
}

export function validateState(definition: AnyActorDefinition, state: unknown): unknown {
  const result = v.safeParse(definition.state, state);
  if (!result.success) throw validationError("state.invalid", `${definition.type} state`, result.issues);
  return result.output;
}
