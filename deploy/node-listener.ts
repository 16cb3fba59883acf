// The node's HTTP listener: serves the gateway app, counts requests under way, closes connections while draining.
import type { LocalActorHost } from "../actors/hosts/local/index.ts";
import type { GatewayApp } from "../edge/app.ts";
import type { Config } from "../shared/config/index.ts";
import { errorFields, type Logger } from "../shared/telemetry/log/index.ts";
import type { NodeTls } from "./node-tls.ts";
import { idleTimeoutFor, type Serve } from "./serve.ts";

/** What the listener and the stop share: whether the node drains (set when stop begins), its requests under way. */
export interface HttpTraffic {
  draining: boolean;
  requestsUnderWay: number;
}

export interface NodeListenerParts {
  serve: Serve;
  config: Config;
  app: GatewayApp;
  traffic: HttpTraffic;
  tls: NodeTls;
  host: LocalActorHost | undefined;
  logger: Logger;
}

export function serveNodeApp(parts: NodeListenerParts): ReturnType<Serve> {
  const { serve, config, app, traffic, tls, host, logger } = parts;
  const { tlsFiles, tlsApplied } = tls;
  return serve({
    port: config.PORT,
    hostname: config.HOST,
    // On Bun: a request may take REQUEST_TIMEOUT to answer before the connection counts as idle.
    idleTimeoutSeconds: idleTimeoutFor(config.REQUEST_TIMEOUT),
    // No body limit of Bun's own: past its 128 MiB default, Bun answered 413 with an empty body before the app, so a
    // Content-Length over it got no problem+json. The app bounds every body it reads (BODY_LIMIT, the delivery and
    // console limits), refusing a declared length unread and a streamed one at its limit, and Bun buffers nothing
    // that is not read (it stops reading the socket instead).
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: async (request, peer) => {
      traffic.requestsUnderWay++;
      try {
        const response = await app.fetch(request, peer.address ? { remoteAddress: peer.address } : {});
        // While the node drains, a kept-alive connection is closed after its answer: the client's next request
        // opens a new one, which the load balancer sends elsewhere, instead of meeting this listener's close.
        return traffic.draining ? closingConnection(response) : response;
      } finally {
        traffic.requestsUnderWay--;
      }
    },
    // Answered problem+json by the serve; reported here, as the app's own failures are.
    onError: (error) => logger.error("request failed outside the app", { error: errorFields(error) }),
    // A gateway's certificate is a client's; a node that hosts actors listens with its own.
    ...(tlsFiles && host
      ? {
          tls: {
            files: tlsFiles,
            requireClientCert: config.TLS_CA_FILE !== undefined,
            onApplied: tlsApplied,
          },
        }
      : {}),
  });
}

/** The answer with `Connection: close` (a copy when its headers are immutable, as a fetched response's are). */
function closingConnection(response: Response): Response {
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set("connection", "close");
    return copy;
  }
}
