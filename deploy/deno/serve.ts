// The serve port on Deno: Deno.serve, with the peer address from the connection info. Runs only under Deno.
import { EdgewiseError, problemResponse } from "../../shared/errors/index.ts";
import { requestIdFor } from "../../edge/middleware/request-id/index.ts";
import { apiSecurityHeaders } from "../../edge/middleware/secure-headers/index.ts";
import { type Serve, unansweredFailure } from "../serve.ts";

interface DenoAddr {
  hostname?: string;
  port: number;
}
interface DenoServer {
  addr: DenoAddr;
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

export const denoServe: Serve = (options) => {
  if (options.tls) {
    // Deno.serve takes a cert and key but has no option to request or verify client certificates.
    throw new EdgewiseError(
      "config.invalid",
      "TLS listeners (mutual TLS) are Bun-only for now: Deno.serve cannot request client certificates; run this node on Bun or terminate TLS in front of it",
    );
  }
  const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
  // Deno's shutdown() fails a request whose body is still arriving (BadResource, answered 500), so a graceful stop
  // first waits for the handlers under way; requests that arrive meanwhile get 503 and `connection: close`.
  let underWay = 0;
  let closing = false;
  let settled: (() => void) | undefined;
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
  return {
    port: server.addr.port,
    async stop(force) {
      closing = true;
      if (!force && underWay > 0) await new Promise<void>((resolve) => (settled = resolve));
      await server.shutdown();
    },
  };
};

/**
 * The 503 for a request that arrives while the server closes. It never reaches the app, so it is given here what
 * the app gives every answer, as Bun's (served by the app until its listener closes) have: an `X-Request-Id` (the
 * caller's, when sane) for the client to quote, the problem's `instance`, and the API's security headers.
 */
function shuttingDown(request: Request): Response {
  const headers = new Headers(apiSecurityHeaders.map(([name, value]) => [name, value]));
  headers.set("connection", "close");
  headers.set("retry-after", "1");
  headers.set("x-request-id", requestIdFor(request.headers.get("x-request-id")));
  return problemResponse(new EdgewiseError("unavailable", "this server is shutting down"), {
    // The path as sent, percent-encoding kept, as the app's error handler gives it.
    instance: new URL(request.url).pathname,
    headers,
  });
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
