// The process's own certificate for mutual TLS (SECURITY.md), followed as its files are rotated, and its log lines.
import type { Config } from "../shared/config/index.ts";
import { errorFields, type Logger } from "../shared/telemetry/log/index.ts";
import type { Stop } from "./node-stop.ts";
import { type TlsFiles, type TlsMaterial, tlsSummary, watchTlsFiles } from "./tls.ts";

export interface NodeTls {
  tlsFiles: TlsFiles | undefined;
  /** Logs a certificate applied after a rotation. */
  tlsApplied: (material: TlsMaterial) => void;
}

export function watchNodeTls(config: Config, logger: Logger, stops: Stop[]): NodeTls {
  // Mutual TLS (SECURITY.md): this process's certificate, followed as its files are rotated. An actor host serves
  // with it (and, with TLS_CA_FILE, admits only clients of those CAs); a gateway presents it to its actor host.
  const tlsFiles: TlsFiles | undefined = config.TLS_CERT_FILE
    ? watchTlsFiles(
        {
          cert: config.TLS_CERT_FILE,
          key: config.TLS_KEY_FILE as string,
          ...(config.TLS_CA_FILE ? { ca: config.TLS_CA_FILE } : {}),
        },
        {
          onError: (error) =>
            logger.warn("tls: a rotated certificate was not applied", { error: errorFields(error) }),
        },
      )
    : undefined;
  const tlsApplied = (material: TlsMaterial) =>
    logger.info("tls: certificate files applied", { ...tlsSummary(material) });
  if (tlsFiles) {
    stops.push(() => tlsFiles.close());
    // What it presents and trusts, at start and on every change applied: during a CA rotation, the line an
    // operator waits for on each process before the next step (SECURITY.md, "Rotating a role CA").
    logger.info("tls: certificate files loaded", { ...tlsSummary(tlsFiles.current()) });
    // A node that serves TLS logs it once its listener has switched (node-listener.ts); a gateway's next call
    // uses them.
    if (config.ACTOR_HOST_URL) tlsFiles.onChange(tlsApplied);
  }
  return { tlsFiles, tlsApplied };
}
