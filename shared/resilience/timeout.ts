// withTimeout(): a deadline that aborts the work through its AbortSignal, and rejects with `timeout` (504).
import { EdgewiseError, isEdgewiseError } from "../errors/index.ts";
import { abortReason } from "./abort.ts";

/**
 * Runs `fn` with a signal that aborts after `ms` (reason: a `timeout` EdgewiseError) or when `parentSignal`
 * aborts (reason: the parent's). The promise settles at the abort even if `fn` ignores its signal.
 *
 * The timer is made per call and cleared on settle: workerd ties a timer to the request that created it, so a
 * shared or module-scope timer would outlive (or fail outside) its request.
 */
export function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  ms: number,
  parentSignal?: AbortSignal,
): Promise<T> {
  if (!(ms >= 0) || ms === Number.POSITIVE_INFINITY) {
    return Promise.reject(
      new EdgewiseError("config.invalid", `timeout must be a finite number ≥ 0, got ${ms}`),
    );
  }
  if (parentSignal?.aborted) return Promise.reject(abortReason(parentSignal));
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(abortReason(parentSignal as AbortSignal));
  parentSignal?.addEventListener("abort", onParentAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new EdgewiseError("timeout", `The operation did not finish within ${ms} ms.`)),
    ms,
  );
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener("abort", () => reject(abortReason(controller.signal)), { once: true });
  });
  // `fn` may throw synchronously; that is a rejection like any other.
  const work = (async () => fn(controller.signal))();
  // Promise.race subscribes to both, so whichever loses never surfaces as an unhandled rejection.
  return Promise.race([work, aborted]).finally(() => {
    clearTimeout(timer);
    parentSignal?.removeEventListener("abort", onParentAbort);
  });
}

/** Whether an error is a deadline passing (ours, by code), as opposed to the caller giving up. */
export function isTimeout(error: unknown): boolean {
  return isEdgewiseError(error) && error.code === "timeout";
}
