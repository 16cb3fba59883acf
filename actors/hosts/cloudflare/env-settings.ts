// A node setting read from a Worker's environment, checked as a node checks it (shared/config): one rule on every runtime.
import * as v from "valibot";
import { ConfigSchema } from "../../../shared/config/index.ts";
import { EdgewiseError } from "../../../shared/errors/index.ts";

type Settings = typeof ConfigSchema.entries;

/**
 * The variable's value as a node's configuration would parse it: its default when unset or empty, and
 * `config.invalid` naming it when its value is not valid (a Durable Object then refuses its calls, as a node with
 * the same value refuses to start).
 */
export function settingFromEnv<K extends keyof Settings>(env: unknown, name: K): v.InferOutput<Settings[K]> {
  const raw = (env as Record<string, unknown> | undefined)?.[name];
  const value = raw === "" ? undefined : raw;
  const parsed = v.safeParse(ConfigSchema.entries[name], value);
  if (parsed.success) return parsed.output as v.InferOutput<Settings[K]>;
  const message = parsed.issues[0]?.message ?? `${name} is not valid`;
  throw new EdgewiseError("config.invalid", message, { issues: [{ path: name, message }] });
}
