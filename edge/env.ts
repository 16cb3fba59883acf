// The gateway's Hono environment: what each middleware leaves on the context for the ones after it.
import type { Logger } from "../shared/telemetry/log/index.ts";
import type { Principal } from "./middleware/auth/principal.ts";

export interface GatewayVariables {
  /** Set by request-id: echoed in `X-Request-Id` and carried into logs and problem details. */
  requestId: string;
  /**
   * Set by request-id: the app's logger bound to this request (its id, and the caller's trace id if sent); the
   * telemetry middleware binds the request's own trace and SERVER span ids to it, the delivery route its delivery's.
   */
  log: Logger;
  /** Set by client-ip: the runtime's own peer address, or a forwarded one from a trusted proxy. */
  clientIp: string;
  /**
   * Set by client-ip: the scheme the client used, the connection's own or, from a trusted proxy, the one it forwards
   * (X-Forwarded-Proto, or Forwarded's `proto=`). Unset in an app without client-ip: read the request's URL then.
   */
  clientProto: "http" | "https" | undefined;
  /** Set by auth: who is calling; undefined when anonymous. */
  principal: Principal | undefined;
  /**
   * Set by timeout: aborts when the request's time is up. A client that goes away does not abort it: work already
   * asked for goes on, and an order whose request arrived whole is placed once (its Idempotency-Key finds it).
   */
  signal: AbortSignal;
  /**
   * Set by telemetry on an internal path (an actor host's routes): runs `work` under the request's SERVER span,
   * started only when this is called, once the route has checked the caller's signature. Until then the request
   * records nothing, so an outsider's call cannot add spans to the trace store.
   */
  traceSigned: (<T>(work: () => Promise<T>) => Promise<T>) | undefined;
}

/** Per-runtime facts an entry passes in as Hono `env` bindings. */
export interface GatewayBindings {
  /** The TCP peer address as the runtime reports it (Bun's requestIP, Deno's remoteAddr); absent on Workers. */
  remoteAddress?: string;
}

export interface GatewayEnv {
  Variables: GatewayVariables;
  Bindings: GatewayBindings;
}
