// The actor registry: which definitions a host runs, looked up by type.
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { AnyActorDefinition } from "./define.ts";

export class ActorRegistry {
  private readonly byType = new Map<string, AnyActorDefinition>();

  constructor(definitions: Iterable<AnyActorDefinition>) {
    for (const definition of definitions) {
      if (this.byType.has(definition.type)) {
        throw new EdgewiseError("config.invalid", `actor type "${definition.type}" is defined twice`);
      }
      this.byType.set(definition.type, definition);
    }
  }

  get types(): string[] {
    return [...this.byType.keys()];
  }

  resolve(type: string): AnyActorDefinition {
    const definition = this.byType.get(type);
    if (!definition) throw new EdgewiseError("actor.unknown_type", `no actor type "${type}" is registered`);
    return definition;
  }
}
