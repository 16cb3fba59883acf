// The commands `npm start` prints for a newcomer: stock a sku, fund a customer, place an order, read it back.
import { isLoopbackHost } from "../shared/net/ip.ts";

/**
 * Shell lines, each runnable as printed (the token is inlined: it is the node's own local admin token). Each URL is
 * quoted: zsh (macOS's default shell) refuses an unquoted `?` or `[::1]` with "no matches found".
 */
export function tryItLines(base: string, token: string): string[] {
  const auth = `-H "authorization: Bearer ${token}"`;
  const json = `-H 'content-type: application/json'`;
  return [
    "[edgewise] try it (stock a sku, fund a customer, place an order, then list that customer's orders):",
    `  curl -X PUT '${base}/v1/inventory/demo-widget' ${auth} ${json} -d '{"available":100,"priceCents":1250}'`,
    `  curl -X PUT '${base}/v1/accounts/demo-customer' ${auth} ${json} -d '{"balanceCents":100000}'`,
    `  curl -X POST '${base}/v1/orders' ${auth} ${json} -d '{"customerId":"demo-customer","items":[{"sku":"demo-widget","quantity":2}]}'`,
    `  curl '${base}/v1/orders?customerId=demo-customer' ${auth}`,
    `[edgewise] console (topology, live events, traces, queues and dead letters): ${base}/_console?token=${token}`,
    `[edgewise] more: the demo counter (curl -X POST '${base}/v1/counters/demo/increment' ${auth} ${json} -d '{"by":1}'), ${base}/openapi.json, and npm run demo`,
  ];
}

/**
 * What a node prints after its address on embedded defaults: its own admin token and how long it lasts, then the
 * commands. Only for the node's own key: an operator's JWT_SECRET never yields a token to print.
 */
export function firstRunLines(
  base: string,
  token: string,
  options: { clientCertificates?: boolean } = {},
): string[] {
  return [
    adminTokenLine(token),
    ...(options.clientCertificates ? [clientCertificateLine] : []),
    ...tryItLines(base, token),
  ];
}

/**
 * Before the commands of a node that requires client certificates (an actor host with TLS_CA_FILE): curl as printed
 * has no certificate to present, and does not trust the node's CA, so it fails the handshake.
 */
export const clientCertificateLine =
  "[edgewise] this node requires a client certificate (TLS_CA_FILE): add curl's --cacert, --cert and --key to the" +
  " commands below (with npm run certs: --cacert .edgewise/certs/actor-host-ca-bundle.pem --cert .edgewise/certs/gateway.pem" +
  " --key .edgewise/certs/gateway.key), or send them to a gateway instead";

/** The line that prints the node's own admin token, with how long it lasts (a day, or JWT_MAX_LIFETIME). */
export function adminTokenLine(token: string): string {
  const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as {
    iat?: number;
    exp?: number;
  };
  const seconds = (claims.exp ?? 0) - (claims.iat ?? 0);
  const lifetime =
    seconds % 3600 === 0
      ? `${seconds / 3600} h`
      : seconds % 60 === 0
        ? `${seconds / 60} min`
        : `${seconds} s`;
  return `[edgewise] admin token (${lifetime}, local development): ${token}`;
}

/**
 * The first line a node prints: the URL to use from this machine, and what the socket is really bound to. `HOST`
 * defaults to 0.0.0.0, so the node answers on every interface, which a URL of 127.0.0.1 alone would hide.
 */
export function listeningLine(url: string, host: string, details: string): string {
  const loopback = isLoopbackHost(host);
  const reach =
    host === "0.0.0.0" || host === "::"
      ? `bound to ${host}: every interface, set HOST=127.0.0.1 for this machine only`
      : loopback
        ? "this machine only"
        : `bound to ${host}`;
  return `[edgewise] listening on ${url} (${reach}; ${details})`;
}

/** The line after it: where the node's queue is, its own embedded broker or the one QSTASH_URL names. */
export function queueLine(node: { broker: unknown; brokerUrl: string }): string {
  return `[edgewise] queue: ${node.broker ? `embedded broker at ${node.brokerUrl}` : node.brokerUrl}`;
}
