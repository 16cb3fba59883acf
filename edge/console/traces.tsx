// The console's trace page, `/_console/traces/:traceId`: one trace's spans as a waterfall, from the node's trace store.
import type { Hono } from "hono";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../env.ts";
import { notFound, page, unavailable } from "./page.tsx";
import type { ConsoleOptions, ConsoleSpan } from "./types.ts";
import { Layout, Waterfall } from "./views.tsx";

export function traceRoutes(app: Hono<GatewayEnv>, options: ConsoleOptions): void {
  app.get("/_console/traces/:traceId", async (c) => {
    const traceId = c.req.param("traceId");
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
