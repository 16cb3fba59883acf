// AbortSignal plumbing shared by the policies: a signal's reason, an abortable sleep, a never-aborted signal.

/** Why a signal aborted; runtimes set `reason`, but an abort with `undefined` still deserves an error. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("The operation was aborted.", "AbortError");
}

/** A fresh signal that never aborts, per call: a module-scope controller is what breaks cockatiel on workerd. */
export function neverAborted(): AbortSignal {
  return new AbortController().signal;
}

export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** setTimeout per call (workerd ties timers to the request that made them), cancelled by the signal. */
export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
