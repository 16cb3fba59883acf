// The serve port: how a runtime listens for HTTP. The node and the broker take one; each entry brings its own.
import { EdgewiseError, problemResponse } from "../shared/errors/index.ts";
import { apiSecurityHeaders } from "../edge/middleware/secure-headers/index.ts";
import type { TlsFiles, TlsMaterial } from "./tls.ts";

export interface Peer {
  /** The TCP peer's address, as the runtime reports it. */
  address?: string;
}

export interface ServeOptions {
  port: number;
  hostname: string;
  fetch: (request: Request, peer: Peer) => Response | Promise<Response>;
  /**
   * Bun only: the largest request body the server itself accepts, refused with its own empty 413 before `fetch` sees
   * the request (128 MiB unless set). Deno.serve has no such limit. A server whose `fetch` bounds the bodies it reads
   * sets `Number.MAX_SAFE_INTEGER`, so that its own refusal is the one a client gets.
   */
  maxRequestBodySize?: number;
  /**
   * Bun only: seconds a connection may stay silent, an answer still being worked on included, before Bun closes
   * it (60 by default). Deno.serve has no such setting. See `idleTimeoutFor`.
   */
  idleTimeoutSeconds?: number;
  /**
   * Where a failure that escaped `fetch` is reported (it is answered with `unansweredFailure`). Default: the
   * console's stderr, as the runtimes print one themselves.
   */
  onError?: (error: unknown) => void;
  /**
   * Deno only: the listener stopped accepting connections for good. Deno.serve ends its accept loop on an accept
   * error, such as EMFILE once idle connections (which it never closes) hold every file descriptor; the server
   * serves nothing new after it. Without this, the error is unhandled and ends the process with Deno's stack trace.
   */
  onListenerFailed?: (error: unknown) => void;
  /**
   * Serve HTTPS with the certificate in `files`, following its rotations without downtime. Bun only for now;
   * see `deploy/tls.ts` for the mutual TLS design (a peer's role is the CA that issued its certificate).
   */
  tls?: {
    files: TlsFiles;
    /** Require a client certificate issued by files.current().ca (mutual TLS). */
    requireClientCert: boolean;
    /**
     * Called once a rotation has taken effect: every new connection gets the new material (the listener that
     * served the previous one no longer accepts). Not called for a rotation that could not be applied.
     */
    onApplied?: (material: TlsMaterial) => void;
  };
}

export interface RunningServer {
  /** The port actually bound (a requested 0 picks a free one). */
  port: number;
  /**
   * Stops listening; requests under way finish, unless `force`: Bun then closes their connections; Deno cannot once
   * its graceful shutdown has begun, so it stops waiting for them, and they end with the process.
   */
  stop(force?: boolean): Promise<void>;
}

export type Serve = ((options: ServeOptions) => RunningServer | Promise<RunningServer>) & {
  /**
   * Set by a serve that cannot listen with `tls` (Deno's): the refusal it throws then. A node that would listen
   * with its certificate throws it before it makes anything.
   */
  tlsRefusal?: () => Error;
};

/**
 * The host a client on this machine dials to reach a server bound to `bound`: a wildcard (every interface) is
 * reached at 127.0.0.1; a specific address or name at itself (an IPv6 address in brackets, as a URL needs).
 */
export function dialableHost(bound: string): string {
  if (bound === "0.0.0.0" || bound === "::" || bound === "") return "127.0.0.1";
  return bound.includes(":") && !bound.startsWith("[") ? `[${bound}]` : bound;
}

/**
 * The answer to a request whose `fetch` threw instead of answering: a problem+json 500 that says nothing of the
 * failure, with the API's security headers. Left to itself, Bun answers such a request with its development error
 * page unless NODE_ENV is `production` (the stack, the source lines around it and the working directory, to anyone
 * who sends, say, `CONNECT host:port`), and Deno with a bare text 500.
 */
export function unansweredFailure(error: unknown, report: ServeOptions["onError"]): Response {
  try {
    (report ?? ((e) => console.error("[edgewise] a request failed outside the app:", e)))(error);
  } catch {
    // Reporting a failure never stops its answer.
  }
  return problemResponse(new EdgewiseError("internal", "unanswered failure"), {
    headers: new Headers(apiSecurityHeaders.map(([name, value]) => [name, value])),
  });
}

/**
 * The idle timeout for a server whose requests may take `requestTimeoutMs`: Bun counts a request still being
 * answered as idle, so with its 60 s default a REQUEST_TIMEOUT over a minute was cut off without an answer. Never
 * under 60 s (idle keep-alive connections are closed after it), and at most Bun's 255.
 */
export function idleTimeoutFor(requestTimeoutMs: number): number {
  return Math.min(255, Math.max(60, Math.ceil(requestTimeoutMs / 1000) + 5));
}
