// What a node does when a listener of its own stops accepting connections for good (Deno.serve on EMFILE).
import { EdgewiseError } from "../shared/errors/index.ts";
import { errorFields, type Logger } from "../shared/telemetry/log/index.ts";
import type { Serve } from "./serve.ts";
import { defaultStopTimeoutMs } from "./shutdown.ts";

/**
 * `serve` with its `onListenerFailed` set for every listener the node opens (its own, the embedded broker's). Deno.serve
 * ends its accept loop on an accept error and serves nothing new: unhandled, the error ended the process with a bare
 * stack trace and no drain. Now the node says why in its log and stops as on SIGTERM (requests under way finish),
 * then exits 1 for its supervisor to start it again; with `onFatal` (a test, a supervisor in process), that decides.
 */
export function stoppingOnListenerFailure(
  serve: Serve,
  logger: Logger,
  stopNode: () => Promise<void>,
  onFatal: ((error: EdgewiseError) => void) | undefined,
): Serve {
  let failed = false;
  const onListenerFailed = (error: unknown) => {
    if (failed) return;
    failed = true;
    const fatal = new EdgewiseError(
      "unavailable",
      'the HTTP listener stopped accepting connections; the node stops. On Deno, when the cause is "Too many open files", idle connections hold every file descriptor (Deno.serve never closes one): put a proxy that closes idle connections in front, and raise the limit (ulimit -n)',
    );
    logger.error(fatal.message, { error: errorFields(error) });
    if (onFatal) return onFatal(fatal);
    setTimeout(() => process.exit(1), defaultStopTimeoutMs).unref?.();
    void stopNode().finally(() => process.exit(1));
  };
  const wrapped: Serve = (options) => serve({ onListenerFailed, ...options });
  if (serve.tlsRefusal) wrapped.tlsRefusal = serve.tlsRefusal;
  return wrapped;
}
