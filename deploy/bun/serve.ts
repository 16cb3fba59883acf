// The serve port on Bun: Bun.serve, with the peer address from server.requestIP, and HTTPS / mutual TLS that
// follows certificate rotations without downtime.
//
// Bun's server.reload() does not reload TLS, so a rotation starts a second listener on the same port with the new
// material (both bound with SO_REUSEPORT; the kernel spreads new connections over both), then stops the old one
// gracefully after a short overlap: its in-flight requests finish, new connections reach only the new one.
// With requireClientCert, a client must present a certificate issued by one of the CAs in files.current().ca;
// the handler cannot see which (bun#14097), which is why each role has its own CA (see deploy/tls.ts).
import { EdgewiseError } from "../../shared/errors/index.ts";
import { hostRefusal } from "../adapter-answer.ts";
import { type Serve, unansweredFailure } from "../serve.ts";
import type { TlsMaterial } from "../tls.ts";

/** How long the old listener keeps accepting after a rotation, so connections already queued on it are served. */
const rotationOverlapMs = 250;

function tlsOptions(material: TlsMaterial, requireClientCert: boolean) {
  if (!requireClientCert) return { cert: material.cert, key: material.key };
  if (material.ca === undefined) {
    throw new EdgewiseError(
      "config.invalid",
      "mutual TLS needs a CA bundle to check client certificates against",
    );
  }
  return {
    cert: material.cert,
    key: material.key,
    ca: material.ca,
    requestCert: true,
    rejectUnauthorized: true,
  };
}

type BunServer = ReturnType<typeof Bun.serve>;

/**
 * Bun writes `Date` on every answer but a HEAD's, which RFC 9110 §6.6.1 asks of an origin server with a clock, and
 * §9.3.2 asks to carry the headers its GET would: a HEAD probe (a CDN's, a monitor's) saw no date to age it by.
 * Bun keeps a `Date` the answer sets, so a HEAD answer gets one here. A proxied answer's headers are immutable.
 */
function dated(answer: Response): Response {
  if (answer.headers.has("date")) return answer;
  const date = new Date().toUTCString();
  try {
    answer.headers.set("date", date);
    return answer;
  } catch {
    const headers = new Headers(answer.headers);
    headers.set("date", date);
    return new Response(answer.body, { status: answer.status, statusText: answer.statusText, headers });
  }
}

/**
 * Throws EADDRINUSE when something listens on the port: a TLS listener binds with SO_REUSEPORT (for rotations), which
 * would share a port that another node's SO_REUSEPORT listener holds. A listener without it is refused there.
 */
function portFree(port: number, hostname: string): void {
  const probe = Bun.serve({
    port,
    hostname,
    reusePort: false,
    development: false,
    fetch: () => new Response(),
  });
  probe.stop(true);
}

export const bunServe: Serve = (options) => {
  const tls = options.tls;
  const listen = (port: number): BunServer =>
    Bun.serve({
      port,
      hostname: options.hostname,
      idleTimeout: options.idleTimeoutSeconds ?? 60,
      // Never Bun's development error page (its default unless NODE_ENV=production): see unansweredFailure.
      development: false,
      error: (error) => unansweredFailure(error, options.onError),
      ...(options.maxRequestBodySize ? { maxRequestBodySize: options.maxRequestBodySize } : {}),
      // Outside development mode Bun sets SO_REUSEPORT unless told not to, so a second node on a port in use would
      // bind it too, and the kernel would split connections between two nodes with their own data and keys. Only a
      // TLS listener shares its port, with its successor during a rotation (and only once `portFree` said so).
      reusePort: tls !== undefined,
      ...(tls ? { tls: tlsOptions(tls.files.current(), tls.requireClientCert) } : {}),
      fetch: (request, self) => {
        const address = self.requestIP(request)?.address;
        const answer = hostRefusal(request) ?? options.fetch(request, address ? { address } : {});
        return request.method === "HEAD" ? Promise.resolve(answer).then(dated) : answer;
      },
    });

  if (tls && options.port !== 0) portFree(options.port, options.hostname);
  let server = listen(options.port);
  const port = server.port ?? options.port;
  if (!tls) return { port, stop: (force) => server.stop(force) };

  /** Old listeners: waiting out the overlap (with a timer), then draining their in-flight requests. */
  const retiring = new Map<BunServer, ReturnType<typeof setTimeout> | undefined>();
  const unsubscribe = tls.files.onChange((material) => {
    let next: BunServer;
    try {
      next = listen(port);
    } catch (error) {
      // The old listener keeps serving the previous certificate; the next change tries again.
      console.error(
        `[edgewise] TLS rotation on ${options.hostname}:${port} failed; still serving the previous certificate:`,
        error instanceof Error ? error.message : error,
      );
      return;
    }
    const old = server;
    server = next;
    const timer = setTimeout(() => {
      retiring.set(old, undefined);
      // stop(false) closes the listening socket at once; its requests under way finish.
      const stopped = old.stop(false);
      tls.onApplied?.(material);
      void stopped.catch(() => {}).finally(() => retiring.delete(old));
    }, rotationOverlapMs);
    retiring.set(old, timer);
  });

  return {
    port,
    async stop(force) {
      unsubscribe();
      for (const timer of retiring.values()) clearTimeout(timer);
      await Promise.all([server, ...retiring.keys()].map((listener) => listener.stop(force)));
      retiring.clear();
    },
  };
};
