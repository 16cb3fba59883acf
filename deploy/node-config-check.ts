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
  if (tracing) checkTracingSettings();
  // A node that hosts actors listens with its certificate (node-listener.ts); a gateway's is for its own calls.
  if (config.TLS_CERT_FILE && !config.ACTOR_HOST_URL && options.serve.tlsRefusal) {
    throw options.serve.tlsRefusal();
  }
  options.extend?.checkConfig?.(config);
}
