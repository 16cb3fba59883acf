// What a node refuses from its settings alone, asked before it makes anything: no data dir, secrets or PGlite files.
import { cidrMatcher } from "../edge/middleware/client-ip/cidr.ts";
import { EdgewiseError } from "../shared/errors/index.ts";
import type { NodeOptions } from "./node-options.ts";
import { checkTracingSettings } from "./tracing.ts";

/**
 * Throws what the start would throw later for the same settings, with the same message: each part still reads its
 * own (the client IP's TRUSTED_PROXIES in node-app.ts, tracing's sampling and resource, the listener's TLS, the
 * extension's) and would refuse them there; asked here first, a refused start leaves nothing behind, as one refused
 * for a busy port does (node-port.ts).
 */
export function checkNodeConfig(options: NodeOptions, tracing: boolean): void {
  const { config } = options;
  // PGlite ignores the search_path asked for at connect time: the tables would land in public, silently.
  if (options.schema && !config.DATABASE_URL) {
    throw new EdgewiseError(
      "config.invalid",
      "startNode's schema option needs DATABASE_URL (PGlite keeps its tables in public)",
    );
  }
  cidrMatcher(config.TRUSTED_PROXIES);
  // Read by a Worker only (API Shield's request.cf.tlsClientAuth): a node would start, take it as said, and admit
  // requests with no certificate at all.
  const clientCert = config.REQUIRE_CLIENT_CERT
    ? "REQUIRE_CLIENT_CERT"
    : config.CLIENT_CERT_FINGERPRINTS.length > 0
      ? "CLIENT_CERT_FINGERPRINTS"
      : undefined;
  if (clientCert) {
    throw new EdgewiseError(
      "config.invalid",
      `${clientCert} is a Worker's setting (behind API Shield); a node never checks it and would admit requests without a client certificate: unset it, and for mutual TLS on a node set TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE on the actor host (SECURITY.md, Mutual TLS)`,
      { issues: [{ path: clientCert, message: "read on Workers only" }] },
    );
  }
  if (tracing) checkTracingSettings();
  // A node that hosts actors listens with its certificate (node-listener.ts); a gateway's is for its own calls.
  if (config.TLS_CERT_FILE && !config.ACTOR_HOST_URL && options.serve.tlsRefusal) {
    throw options.serve.tlsRefusal();
  }
  options.extend?.checkConfig?.(config);
}
