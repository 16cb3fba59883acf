// How a node calls the broker's API (QSTASH_URL): over https trusting QSTASH_CA_FILE, a refused certificate said so.
import { EdgewiseError } from "../shared/errors/index.ts";
import { isLoopbackHost } from "../shared/net/ip.ts";
import { caFetch, type WatchedFiles } from "./tls.ts";

/** Codes of a refused server certificate, as Bun reports them (OpenSSL's verify errors and Node's name check). */
const refusedCertificate =
  /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/;

/**
 * The fetch for every call a node makes to the broker: the queue transport's publishes, /readyz's `GET /v2/keys`,
 * the console's queues and dead letters. With `ca` (QSTASH_CA_FILE, followed as it rotates) only its CAs are
 * trusted for the broker's certificate, on Bun; without, the runtime's public roots (Upstash). A certificate refused
 * at the handshake fails the call with `broker.unavailable` naming the cause and the setting that fixes it, instead
 * of an OpenSSL code alone: nothing was sent, and the relay keeps the messages in its outbox and retries.
 */
export function brokerApiFetch(
  url: string,
  options: BrokerApiFetchOptions = {},
): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
  const { ca, onRefused } = options;
  const send = ca ? caFetch(ca) : (input: string | URL | Request, init?: RequestInit) => fetch(input, init);
  const { host, hostname, protocol } = new URL(url);
  let reported: string | undefined;
  return async (input, init) => {
    let response: Response;
    try {
      response = await send(input, init);
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (protocol !== "https:" || typeof code !== "string" || !refusedCertificate.test(code)) throw error;
      // Not public: the broker's address and the remedy are the operator's, not a caller's (an inbound webhook's).
      const refused = new EdgewiseError(
        "broker.unavailable",
        `the broker at ${host} presented a certificate this node refuses (${code}): ${remedy(code, hostname, ca !== undefined)}`,
        { cause: error, meta: { code }, public: false },
      );
      if (reported !== code) onRefused?.(refused);
      reported = code;
      throw refused;
    }
    reported = undefined;
    return response;
  };
}

export interface BrokerApiFetchOptions {
  /** The CAs trusted for the broker's certificate (QSTASH_CA_FILE); without, the runtime's public roots. */
  ca?: WatchedFiles<string> | undefined;
  /**
   * Told when the broker's certificate is refused, once per cause until a call succeeds: /readyz alone would say
   * only `unreachable`, and a gateway's relays are not the ones that would log it.
   */
  onRefused?: (error: EdgewiseError) => void;
}

/** What to do about a refused certificate, by its code. */
function remedy(code: string, hostname: string, withCa: boolean): string {
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return `it does not name ${hostname}: reissue it with that name (npm run certs -- --broker-san ${hostname}), or set QSTASH_URL to a name it has`;
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID")
    return "it is out of its validity dates: reissue it (npm run certs), or check this machine's clock";
  return withCa
    ? "no CA in QSTASH_CA_FILE issued it"
    : "for a self-hosted broker, set QSTASH_CA_FILE to the bundle of the CA that issued it (npm run certs: broker-ca-bundle.pem)";
}

/**
 * A warning for a node that reaches its broker over plain HTTP on another machine: its token, which lets anyone
 * have the broker sign and deliver anything, and every message body cross the network in clear.
 */
export function plainBrokerWarning(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const { protocol, hostname } = new URL(url);
  if (protocol !== "http:" || isLoopbackHost(hostname)) return undefined;
  return (
    `queue: QSTASH_URL is plain http:// to ${hostname}, beyond this machine: QSTASH_TOKEN and every message cross ` +
    "the network in clear; serve the broker over https (QSTASH_TLS_CERT_FILE) and set QSTASH_CA_FILE"
  );
}
