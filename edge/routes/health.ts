// Health: /healthz says the process is up; /readyz checks each dependency and says which one is down.
import { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { isTimeout, withTimeout } from "../../shared/resilience/index.ts";
import type { GatewayEnv } from "../env.ts";
import { json, publicRoute } from "../openapi.ts";
import { Health, Readiness } from "./responses.ts";

export interface DependencyCheck {
  name: string;
  /** A critical dependency that is down makes /readyz answer 503. */
  critical: boolean;
  /** Resolves when the dependency answers; rejects or times out otherwise. */
  check(signal: AbortSignal): Promise<void>;
  /** The state of the breaker in front of it, once there is one. */
  breaker?: () => string;
  /** Until when (ms since the epoch) it said a limit of ours is spent, while that is ahead: it answers, and paces us. */
  rateLimitedUntil?: () => number | undefined;
  /** What a failed check means, as `reason` (default "unreachable"; "timed out" when it took too long). */
  failedAs?: string;
  /** A reason read from the check's error, before `failedAs` (Redis's reply code, e.g. "NOPERM"); undefined if none. */
  reasonFrom?: (error: unknown) => string | undefined;
}

export interface HealthOptions {
  checks?: DependencyCheck[];
  timeoutMs?: number;
  /** True once the process is stopping: /readyz answers 503 `draining`, so a load balancer sends no more. */
  draining?: () => boolean;
  /**
   * A check run within this many ms that found every dependency up answers again, instead of new checks. Default
   * 1000. /readyz is public and not rate limited, so without it every probe of a flood reached Postgres and the
   * broker. Requests that arrive while checks run always share them; a failed result is never reused.
   */
  reuseMs?: number;
}

interface CheckResult {
  name: string;
  ok: boolean;
  critical: boolean;
  ms: number;
  reason?: string;
}

export function healthRoutes(options: HealthOptions = {}) {
  const checks = options.checks ?? [];
  const timeoutMs = options.timeoutMs ?? 2_000;
  const reuseMs = options.reuseMs ?? 1_000;
  const runChecks = (): Promise<CheckResult[]> =>
    Promise.all(
      checks.map(async (dependency) => {
        const started = performance.now();
        try {
          // Raced against the timeout, not only signalled: a check that ignores its signal (a client blocked on a
          // blackholed socket) must not hold /readyz past its bound.
          await withTimeout((signal) => dependency.check(signal), timeoutMs);
          return { name: dependency.name, ok: true, critical: dependency.critical, ms: elapsed(started) };
        } catch (error) {
          const reason = isTimeout(error)
            ? "timed out"
            : (reasonOf(error) ?? dependency.reasonFrom?.(error) ?? dependency.failedAs ?? "unreachable");
          return {
            name: dependency.name,
            ok: false,
            critical: dependency.critical,
            ms: elapsed(started),
            reason,
          };
        }
      }),
    );
  /** The checks in flight, or the last ones that found everything up (see `reuseMs`). */
  let shared: { results: Promise<CheckResult[]>; settledAt?: number; allOk?: boolean } | undefined;
  const currentChecks = (): Promise<CheckResult[]> => {
    const reusable =
      shared &&
      (shared.settledAt === undefined ||
        (shared.allOk === true && performance.now() - shared.settledAt <= reuseMs));
    if (shared && reusable) return shared.results;
    const run: NonNullable<typeof shared> = { results: runChecks() };
    shared = run;
    void run.results.then((results) => {
      run.settledAt = performance.now();
      run.allOk = results.every((result) => result.ok);
    });
    return run.results;
  };
  const app = new Hono<GatewayEnv>();
  app.get(
    "/healthz",
    describeRoute({
      summary: "Liveness: 200 once the process is up",
      tags: ["operations"],
      ...publicRoute,
      responses: { 200: json("Up", Health) },
    }),
    (c) => c.json({ status: "ok" }),
  );
  app.get(
    "/readyz",
    describeRoute({
      summary: "Readiness: each dependency, its state and its breaker's",
      tags: ["operations"],
      ...publicRoute,
      responses: {
        200: json("Every critical dependency answered", Readiness),
        503: json(
          "A critical dependency is down (unavailable), or the process is stopping (draining)",
          Readiness,
        ),
      },
    }),
    async (c) => {
      if (options.draining?.()) return c.json({ status: "draining", dependencies: {} }, 503);
      const results = await currentChecks();
      const dependencies = Object.fromEntries(
        results.map(({ name, ...rest }) => {
          const check = checks.find((candidate) => candidate.name === name);
          const breaker = check?.breaker?.();
          const limitedUntil = check?.rateLimitedUntil?.();
          return [
            name,
            {
              ...rest,
              ...(breaker ? { breaker } : {}),
              ...(limitedUntil === undefined
                ? {}
                : { rateLimitedUntil: new Date(limitedUntil).toISOString() }),
            },
          ];
        }),
      );
      const ready = results.every((result) => result.ok || !result.critical);
      return c.json({ status: ready ? "ready" : "unavailable", dependencies }, ready ? 200 : 503);
    },
  );
  return app;
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 10) / 10;

/** A cause the failed call named itself (`meta.reason`, e.g. Redis's "refused" for a rejected password). */
function reasonOf(error: unknown): string | undefined {
  const reason = error instanceof EdgewiseError ? error.meta?.reason : undefined;
  return typeof reason === "string" ? reason : undefined;
}
