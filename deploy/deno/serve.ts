// The serve port on Deno: Deno.serve, with the peer address from the connection info. Runs only under Deno.
import { EdgewiseError } from "../../shared/errors/index.ts";
import { adapterProblem, hostRefusal, pathOf } from "../adapter-answer.ts";
import { type Serve, unansweredFailure } from "../serve.ts";

interface DenoAddr {
  hostname?: string;
  port: number;
}
interface DenoServer {
  addr: DenoAddr;
  /** Rejects when the accept loop fails (EMFILE, say): the listener is closed then, the open connections are not. */
  finished: Promise<void>;
  shutdown(): Promise<void>;
}
interface DenoGlobal {
  serve(
    options: {
      port: number;
      hostname: string;
      onListen?: () => void;
      onError?: (error: unknown) => Response | Promise<Response>;
    },
    handler: (request: Request, info: { remoteAddr: DenoAddr }) => Response | Promise<Response>,
  ): DenoServer;
}

/**
 * Deno.serve takes a cert and key but has no option to request or verify client certificates. A setting, so it names
 * TLS_CERT_FILE: exit 78 like any other (start-failure.ts), whether or not TLS_CA_FILE asks for mutual TLS.
 */
const tlsRefusal = () =>
  new EdgewiseError(
    "config.invalid",
    "TLS_CERT_FILE: a TLS listener is Bun-only for now (this adapter serves plain HTTP, and Deno.serve cannot request the client certificates TLS_CA_FILE would ask for); run this node on Bun or terminate TLS in front of it",
    { issues: [{ path: "TLS_CERT_FILE", message: "a TLS listener is Bun-only" }] },
  );

export const denoServe: Serve = (options) => {
  if (options.tls) throw tlsRefusal();
  const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
  // Deno's shutdown() fails a request whose body is still arriving (BadResource, answered 500), so a graceful stop
  // first waits for the handlers under way; requests that arrive meanwhile get 503 and `connection: close`.
  let underWay = 0;
  let closing = false;
  let settled: (() => void) | undefined;
  let shutdown: Promise<void> | undefined;
  let server: DenoServer;
  try {
    server = deno.serve(
      {
        port: options.port,
        hostname: options.hostname,
        onListen: () => {},
        onError: (error) => unansweredFailure(error, options.onError),
      },
      async (request, info) => {
        // Deno.serve's request.url is `http://` + Host + the target, Host unchecked: `Host: x/_edgewise` would make
        // `GET /healthz` reach the app as /_edgewise/healthz, past a front proxy that filters paths. No Host (or an
        // empty one) is given `localhost:<port>` by Deno.
        const refused = hostRefusal(request);
        if (refused) return refused;
        if (closing) return shuttingDown(request);
        underWay++;
        try {
          return await options.fetch(
            request,
            info.remoteAddr.hostname ? { address: info.remoteAddr.hostname } : {},
          );
        } finally {
          if (--underWay === 0) settled?.();
        }
      },
    );
  } catch (error) {
    throw listenFailure(error);
  }
  const { onListenerFailed } = options;
  if (onListenerFailed) server.finished.catch((error: unknown) => onListenerFailed(error));
  return {
    port: server.addr.port,
    async stop(force) {
      closing = true;
      if (force) {
        // shutdown() waits for every connection, one whose body never ends too, for as long as its client keeps
        // it, and once it has begun nothing closes them (aborting the serve's signal then throws BadResource,
        // uncaught): a forced stop no longer waits for it. The listener is closed; those connections end with the
        // process.
        shutdown ??= server.shutdown();
        shutdown.catch(() => undefined);
        return;
      }
      if (underWay > 0) await new Promise<void>((resolve) => (settled = resolve));
      shutdown ??= server.shutdown();
      await shutdown;
    },
  };
};
denoServe.tlsRefusal = tlsRefusal;

/**
 * The 503 for a request that arrives while the server closes. It never reaches the app, so it is given here what
 * the app gives every answer, as Bun's (served by the app until its listener closes) have.
 */
function shuttingDown(request: Request): Response {
  return adapterProblem(
    request,
    new EdgewiseError("unavailable", "this server is shutting down"),
    pathOf(request.url),
    [
      ["connection", "close"],
      ["retry-after", "1"],
    ],
  );
}

/**
 * Deno's errors for an address it cannot listen on (AddrNotAvailable, a HOST that does not resolve) say no
 * `syscall`, as Node's and Bun's say `listen`: without it the start failure was Deno's bare "Cannot assign requested
 * address (os error 99)", naming neither HOST nor PORT. Tagged, it reads as on Bun (deploy/start-failure.ts).
 */
function listenFailure(error: unknown): unknown {
  if (typeof error === "object" && error !== null && !("syscall" in error))
    Object.assign(error, { syscall: "listen" });
  return error;
}
