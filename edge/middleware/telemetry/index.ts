// telemetry: times each request and reports it (route, status, duration) to whoever observes the gateway.
import { createMiddleware } from "hono/factory";
import type { Context } from "hono";
import { matchedRoutes, routePath } from "hono/route";
import type { GatewayEnv } from "../../env.ts";
import {
  activeContext,
  type Context as TraceContext,
  contextFromTraceparent,
  droppedSpan,
  hasSpan,
  isSampled,
  isSpanValid,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  tracer,
  withContext,
} from "../../../shared/telemetry/trace/index.ts";
import { httpMethodName, methodText } from "../../../shared/telemetry/http-method.ts";
import type { Logger } from "../../../shared/telemetry/log/index.ts";
import { maskSecrets } from "../../../shared/telemetry/log/redact.ts";
import { isReadMethod, keepRead, keepWrite } from "../../../shared/telemetry/trace/sampling.ts";

export interface RequestRecord {
  method: string;
  /** The matched route pattern (`/v1/orders/:id`), never the raw path, so metrics stay low-cardinality. */
  route: string;
  status: number;
  durationMs: number;
  requestId: string;
}

export interface TelemetryOptions {
  onRequest?: (record: RequestRecord) => void;
  /**
   * Paths whose requests are never recorded, whatever the sampling or the caller's `traceparent` says (health
   * probes, metric scrapes, the operator console's own pages, assets and live stream): they run under an unsampled
   * context, so nothing they start is recorded either, and they take nothing from the sampling budget. Still timed
   * and reported to `onRequest`.
   */
  untraced?: (path: string) => boolean;
  /**
   * Paths only another part of the system calls (an actor host's routes, signed by the gateway): nothing is recorded
   * until the route has checked the caller's signature and calls `c.var.traceSigned`, which starts the SERVER span;
   * there a caller's sampled `traceparent` is followed, so a trace is recorded whole. A request refused before that
   * records nothing, whatever its `traceparent`. Anywhere else, `/_edgewise/*` included, a caller's sampled flag
   * passes the sampling policy like any outsider's. Default none.
   */
  internal?: (path: string) => boolean;
}

/** The broker's deliveries get a CONSUMER span in the delivery route instead (its parent is in the body). */
const deliveryPrefix = "/_edgewise/deliver/";

export function telemetry(options: TelemetryOptions = {}) {
  const { onRequest, untraced, internal } = options;
  return createMiddleware<GatewayEnv>(async (c, next) => {
    const started = performance.now();
    const never = untraced?.(c.req.path) ?? false;
    const signed = !never && (internal?.(c.req.path) ?? false);
    let span = c.req.path.startsWith(deliveryPrefix)
      ? undefined
      : signed
        ? unsignedSpan(c)
        : serverSpan(c, never, false);
    let route: string | undefined;
    if (span) {
      const log = c.var.log;
      // An untraced path's fresh ids name nothing anyone has (a caller's trace id is bound by request-id already).
      if (!never) bindTraceIds(c, log, span.span);
      if (signed) {
        c.set("traceSigned", async (work) => {
          const verified = serverSpan(c, false, true);
          // No SDK: the caller's context, as before the check (nothing records either way).
          if (!verified) return await withContext(callerContext(c), work);
          span = verified;
          bindTraceIds(c, log, verified.span);
          return await withContext(verified.context, work);
        });
      }
      try {
        await withContext(span.context, next);
      } finally {
        route = matchedRoute(c);
        endServerSpan(c, span.span, route);
      }
    } else await next();
    onRequest?.({
      method: c.req.method,
      route: route ?? matchedRoute(c),
      status: c.res.status,
      durationMs: performance.now() - started,
      requestId: c.var.requestId,
    });
  });
}

/**
 * The handler's route pattern. When middleware answered first (401, 413, 429), the route of the handler the
 * request would have reached, so errors count against their route; `/*` when no handler matched (404).
 */
export function matchedRoute(c: Context<GatewayEnv>): string {
  const current = routePath(c);
  if (current !== "/*" && current !== "*") return current;
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i];
    // Middleware is registered for every method (`ALL`); a handler names its own.
    if (route && route.method !== "ALL") return route.path;
  }
  return current;
}

/**
 * A SERVER span per request, continuing the caller's W3C `traceparent`; named by the route pattern once known.
 * The handler runs with it active, so actor turns and their messages join the request's trace. A span that does not
 * record (a request the sampling dropped, or a caller's unsampled `traceparent`) is still made active, so the
 * turns under it, and the messages they send, follow its decision. Undefined without an SDK: the handler then runs
 * in the context it has.
 */
function serverSpan(
  c: Context<GatewayEnv>,
  untraced: boolean,
  internal: boolean,
): { span: Span; context: TraceContext } | undefined {
  const parent = callerContext(c);
  const method = c.req.method;
  // A request that starts a trace is sampled here, before the SDK, by the policy for reads or for writes: a dropped
  // one costs no SDK span. One that continues a caller's trace follows the caller's decision (the SDK's ParentBased),
  // except that a caller outside the system cannot make its requests recorded: its sampled flag passes the same
  // policy, or the request runs unrecorded under the caller's trace id. Internal hops (an actor host's routes, signed
  // or on mutual TLS) follow their caller, so a trace is recorded whole; any other `/_edgewise/*` path is anyone's to
  // call (a 404), and was recorded for any sampled traceparent. An `untraced` path is never recorded, and asks no
  // policy (it would spend the API's budget).
  const starts = !hasSpan(parent);
  const callerSampled = !starts && isSampled(parent) && !internal;
  const span =
    untraced || ((starts || callerSampled) && !(isReadMethod(method) ? keepRead() : keepWrite()))
      ? droppedSpan(starts ? undefined : trace.getSpanContext(parent)?.traceId)
      : tracer().startSpan(method, { kind: SpanKind.SERVER }, parent);
  return isSpanValid(span) ? { span, context: trace.setSpan(parent, span) } : undefined;
}

/**
 * An internal path's request until its signature is checked (`traceSigned`): unrecorded, under the caller's trace id
 * when it sent one, so that a refused request, whoever sent it, records nothing and its access line still correlates.
 */
function unsignedSpan(c: Context<GatewayEnv>): { span: Span; context: TraceContext } {
  const parent = callerContext(c);
  const span = droppedSpan(trace.getSpanContext(parent)?.traceId);
  return { span, context: trace.setSpan(parent, span) };
}

/** The context a request's W3C headers name (the caller's span), or the active one when it sent none. */
function callerContext(c: Context<GatewayEnv>): TraceContext {
  return contextFromTraceparent(c.req.header("traceparent"), c.req.header("tracestate"), activeContext());
}

/**
 * Binds the request's trace to `log` (the request's logger as request-id made it) as `c.var.log`, for its lines
 * written outside the span: the access line, written by the request-id middleware once this one returned, carried
 * no trace id unless the caller sent a `traceparent`.
 */
function bindTraceIds(c: Context<GatewayEnv>, log: Logger | undefined, span: Span): void {
  // No access line below info (the lines written inside the span take its ids themselves).
  if (!log?.isEnabled("info")) return;
  const { traceId, spanId } = span.spanContext();
  c.set("log", log.child({ trace_id: traceId, span_id: spanId }));
}

/** The longest `url.path` a span keeps; the route (`http.route`) is always whole. */
export const maxPathChars = 1024;

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);

function endServerSpan(c: Context<GatewayEnv>, span: Span, route: string): void {
  if (!span.isRecording()) return;
  const status = c.res.status;
  // A method outside RFC 9110's is `_OTHER`, and the name says `HTTP` (OTel's rule): a span's name is what backends
  // group by, and a client can send any token as a method (on Deno, thousands of characters).
  const method = httpMethodName(c.req.method);
  span.updateName(`${method === "_OTHER" ? "HTTP" : method} ${route}`);
  span.setAttributes({
    "http.request.method": method,
    ...(method === "_OTHER" ? { "http.request.method_original": methodText(c.req.method) } : {}),
    "http.route": route,
    "http.response.status_code": status,
    // Masked as logs are: a token pasted into a URL must not land in the trace store. Cut to `maxPathChars`: the
    // store is bounded by spans, and a path can be as long as the runtime's request line (about 16 KB on Bun).
    "url.path": clip(maskSecrets(c.req.path), maxPathChars),
  });
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
