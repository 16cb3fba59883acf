// The `*_PREVIOUS_*` settings of a rotation: each keeps the secret being replaced accepted, and needs the new one set.
import type { Config } from "./index.ts";

/**
 * Each setting that keeps an old secret accepted, the setting it is accepted beside, and what a process that honours
 * it says while it is set: a rotation left half done keeps the old secret working, unnoticed.
 */
export const rotations = [
  {
    previous: "JWT_PREVIOUS_SECRET",
    current: "JWT_SECRET",
    warning:
      "JWT: HS256 tokens signed with JWT_PREVIOUS_SECRET are still accepted (a rotation under way); unset it to refuse them",
  },
  {
    previous: "ACTOR_HOST_PREVIOUS_SECRET",
    current: "ACTOR_HOST_SECRET",
    warning:
      "actor host: gateways' requests signed with ACTOR_HOST_PREVIOUS_SECRET are still accepted (a rotation under way); unset it once every gateway signs with ACTOR_HOST_SECRET",
  },
  {
    previous: "CONSOLE_SESSION_PREVIOUS_SECRET",
    current: "CONSOLE_SESSION_SECRET",
    warning:
      "console: session cookies sealed with CONSOLE_SESSION_PREVIOUS_SECRET are still accepted (a rotation under way); unset it once they have expired (8 h after the rotation at most)",
  },
  {
    previous: "METRICS_PREVIOUS_TOKEN",
    current: "METRICS_TOKEN",
    warning:
      "metrics: scrapes with METRICS_PREVIOUS_TOKEN are still accepted (a rotation under way); unset it once every scraper sends METRICS_TOKEN",
  },
] as const;

export type PreviousSetting = (typeof rotations)[number]["previous"];

/** The warnings of the rotations under way among `honoured`, the previous settings this process reads. */
export function rotationWarnings(config: Config, honoured: readonly PreviousSetting[]): string[] {
  return rotations
    .filter(({ previous }) => honoured.includes(previous) && config[previous] !== undefined)
    .map(({ warning }) => warning);
}

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
