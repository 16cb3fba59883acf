// Graceful shutdown for a process: SIGINT or SIGTERM stops it once, within a bound; a second signal exits at once.
import process from "node:process";

/**
 * How long a stop may take before the process exits anyway (code 1): under a Kubernetes default grace of 30 s,
 * so the process ends on its own terms (its log says so) rather than by SIGKILL.
 */
export const defaultStopTimeoutMs = 28_000;

export interface StopOnSignalsOptions {
  /** Exit 1 if `stop` has not settled by then. Default `defaultStopTimeoutMs`. */
  timeoutMs?: number;
  /** Where the outcome lines go. Default: stdout when the stop succeeded, stderr otherwise. */
  log?: (line: string, failed: boolean) => void;
}

/**
 * The first SIGINT or SIGTERM runs `stop` once: exit 0 when it resolves, 1 when it fails or outlasts `timeoutMs`.
 * A second signal during the stop exits 1 at once, as an operator pressing Ctrl-C twice expects: what was not
 * drained is recovered at the next start (durable state, outboxes and timers are on disk).
 */
export function stopOnSignals(
  stop: () => Promise<unknown>,
  onSignal?: (signal: string) => void,
  options: StopOnSignalsOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? defaultStopTimeoutMs;
  const log =
    options.log ?? ((line: string, failed: boolean) => (failed ? console.error(line) : console.log(line)));
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) {
        log(`[edgewise] ${signal} during the stop: exiting now, without finishing the drain`, true);
        process.exit(1);
      }
      stopping = true;
      onSignal?.(signal);
      const started = Date.now();
      const timer = setTimeout(() => {
        log(`[edgewise] the stop did not finish within ${timeoutMs} ms: exiting`, true);
        process.exit(1);
      }, timeoutMs);
      Promise.resolve()
        .then(stop)
        .then(
          () => {
            clearTimeout(timer);
            log(`[edgewise] stopped in ${Date.now() - started} ms`, false);
            process.exit(0);
          },
          (error: unknown) => {
            clearTimeout(timer);
            log(
              `[edgewise] the stop failed: ${error instanceof Error ? error.message : String(error)}`,
              true,
            );
            process.exit(1);
          },
        );
    });
  }
}
