// A Worker's invalid configuration as an answer: problem+json naming the variable, logged once, not workerd's 1101 page.
import {
  EdgewiseError,
  type ErrorData,
  isEdgewiseError,
  problemResponse,
} from "../../shared/errors/index.ts";
import { createLogger, errorFields, type Logger, maskSecrets } from "../../shared/telemetry/log/index.ts";

export interface ConfigGuard {
  /**
   * Runs a request's handler. A `config.invalid` error (a variable missing or malformed) is answered 500 with
   * problem+json that names the variable; any other error it throws as an internal one.
   */
  fetch(request: Request, handle: () => Promise<Response>): Promise<Response>;
  /** Runs a cron's work. With the configuration invalid there is nothing it can do: it is logged, and the run ends. */
  run(work: () => Promise<void>): Promise<void>;
}

/**
 * Without it, an exception out of `fetch` becomes workerd's generic HTML page (error 1101), which says nothing of
 * the cause, and every request logs it again. The configuration is the same for every request of an isolate (and
 * only a deploy changes it), so the same error is logged once per isolate. Messages name variables, never their
 * values (shared/config); they are masked again on the way out all the same. Each is one JSON line at error, as a
 * node writes them (shared/telemetry/log: redacted); LOG_LEVEL cannot hide it (error is the highest level), and the
 * guard needs no parsed configuration to write it.
 */
export function configGuard(logger: Logger = createLogger()): ConfigGuard {
  let reported: string | undefined;
  const refused = (error: EdgewiseError | ErrorData): EdgewiseError => {
    if (reported !== error.message) {
      reported = error.message;
      logger.error("the Worker's configuration is invalid; requests get 500 until it is fixed", {
        error: errorFields(error),
      });
    }
    return publicConfigError(error);
  };
  return {
    async fetch(request, handle) {
      try {
        return await handle();
      } catch (error) {
        const instance = new URL(request.url).pathname;
        if (isConfigError(error)) return problemResponse(refused(error), { instance });
        logger.error("request failed outside the app", { error: errorFields(error) });
        return problemResponse(error, { instance });
      }
    },
    async run(work) {
      try {
        await work();
      } catch (error) {
        if (!isConfigError(error)) throw error;
        refused(error);
      }
    },
  };
}

function isConfigError(error: unknown): error is EdgewiseError | ErrorData {
  return isEdgewiseError(error) && error.code === "config.invalid";
}

/** The caller may see which variable is wrong: the operator reading the answer needs it, and it holds no secret. */
function publicConfigError(error: EdgewiseError | ErrorData): EdgewiseError {
  const what = error.message.replace(/^Invalid configuration:\s*/, "").replace(/\s*\n\s*/g, "; ");
  return new EdgewiseError("config.invalid", maskSecrets(`Invalid configuration: ${what}`), {
    public: true,
    ...(error.issues
      ? {
          issues: error.issues.map((issue) => ({
            path: issue.path,
            message: maskSecrets(issue.message),
          })),
        }
      : {}),
  });
}
