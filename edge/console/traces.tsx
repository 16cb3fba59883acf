// The console's trace page, `/_console/traces/:traceId`: one trace's spans as a waterfall, from the node's trace store.
import type { Hono } from "hono";
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../env.ts";
import { validate } from "../middleware/validation/index.ts";
import { notFound, page, pageChecked, unavailable } from "./page.tsx";
import type { ConsoleOptions, ConsoleSpan } from "./types.ts";
import { Layout } from "./views/layout.tsx";
import { Waterfall } from "./views/traces.tsx";

const traceIdRule = "a W3C trace id: 32 lowercase hex digits, not all zero";

/**
 * A trace's address: a W3C trace id, as every span the store keeps has (an all-zero id is invalid there). Anything
 * else is refused before the store is read, rather than looked up and echoed back whole on the page.
 */
const TraceParams = v.object({
  traceId: v.pipe(
    v.string(),
    v.regex(/^[0-9a-f]{32}$/, `must be ${traceIdRule}`),
    v.check((traceId) => !/^0+$/.test(traceId), `must be ${traceIdRule}`),
  ),
});

export function traceRoutes(app: Hono<GatewayEnv>, options: ConsoleOptions): void {
  const checkedTrace = pageChecked(validate("param", TraceParams), "Invalid trace id");
  app.get("/_console/traces/:traceId", checkedTrace, async (c) => {
    const { traceId } = c.req.valid("param");
    if (!options.traces) {
      return notFound(c, "Traces", "tracing not configured");
    }
    let spans: ConsoleSpan[];
    try {
      spans = await options.traces.spans(traceId);
    } catch (error) {
      // The store failing (its database closed or unreadable) is a dependency down, not a bug of the console.
      return unavailable(
        c,
        "Trace store unreachable",
        new EdgewiseError("unavailable", "the trace store cannot be read, so this trace cannot be shown", {
          cause: error,
        }),
        "Reload to try again. The API is not affected: the trace store only keeps recent traces for the console.",
      );
    }
    if (spans.length === 0) return notFound(c, "Traces", "no such trace");
    return page(
      c,
      <Layout title={`trace ${traceId}`}>
        <section id="trace">
          <h1>
            Trace <span class="mono">{traceId}</span>
          </h1>
          <Waterfall traceId={traceId} spans={spans} />
        </section>
      </Layout>,
    );
  });
}
