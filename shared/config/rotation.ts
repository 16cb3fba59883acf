// The `*_PREVIOUS_*` settings of a rotation: each keeps the secret being replaced accepted, and needs the new one set.
import type { Config } from "./index.ts";

/** Each setting that keeps an old secret accepted, and the setting it is accepted beside. */
export const rotations = [
  { previous: "JWT_PREVIOUS_SECRET", current: "JWT_SECRET" },
  { previous: "ACTOR_HOST_PREVIOUS_SECRET", current: "ACTOR_HOST_SECRET" },
  { previous: "CONSOLE_SESSION_PREVIOUS_SECRET", current: "CONSOLE_SESSION_SECRET" },
  { previous: "METRICS_PREVIOUS_TOKEN", current: "METRICS_TOKEN" },
] as const;

/**
 * A previous secret without the current one is a rotation begun the wrong way round: refused, naming both. (Without
 * the current one there would be nothing new to move to, and for a bearer token the old one would be the only one.)
 */
export function rotationIssue(
  config: Config,
): { message: string; issue: { path: string; message: string } } | undefined {
  for (const { previous, current } of rotations) {
    if (config[previous] !== undefined && config[current] === undefined) {
      return {
        message: `${previous} is accepted beside ${current} during a rotation: it needs ${current}`,
        issue: { path: current, message: `required when ${previous} is set` },
      };
    }
  }
  return undefined;
}
