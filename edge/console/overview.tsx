// The console's overview, `/_console`: topology, events, breakers, queues and dead letters, inspector, traces.
import type { Hono } from "hono";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { GatewayEnv } from "../env.ts";
import { validate } from "../middleware/validation/index.ts";
import { problemOrPage, requires } from "../openapi.ts";
import type { ConsoleAccess } from "./access.tsx";
import type { BrokerCall } from "./broker.ts";
import { type DeadLetter, type ListedDeadLetter, listDeadLetters } from "./dead-letters.ts";
import type { LiveTail } from "./live.ts";
import { page, pageChecked } from "./page.tsx";
import type { ConsoleLogEntry, ConsoleOptions } from "./types.ts";
import { InspectorForm } from "./views/actors.tsx";
import { BreakerTable } from "./views/breakers.tsx";
import { EventRows } from "./views/events.tsx";
import { Layout } from "./views/layout.tsx";
import { type QueueInfo, QueuesSection } from "./views/queues.tsx";
import { ActorTable, TopologyDiagram } from "./views/topology.tsx";
import { TraceList } from "./views/traces.tsx";

/**
 * The overview's query: `?notice=`, a word the console's own forms redirect with (one it does not know shows nothing,
 * so an address kept from another version still opens the page), and `?token=`, which the guard takes first.
 */
const OverviewQuery = v.strictObject({
  notice: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z_]{1,32}$/, "must be a notice's name: 1-32 letters"),
      v.description("What the console's own form just did, shown above the page (it redirects here with it)"),
    ),
  ),
  token: v.optional(
    v.pipe(
      v.string(),
      v.description("An admin JWT: answered 303 to /_console with an HttpOnly session cookie"),
    ),
  ),
});

/** A Map, not an object: `?notice=constructor` must find nothing, not Object's own function. */
const notices = new Map<string, string>(
  Object.entries({
    replayed: "The dead letter was handed back to the broker for delivery.",
    deleted: "The dead letter was deleted.",
    purged: "Every dead letter was deleted.",
    failed: "The broker refused the request; see the dead-letter table.",
  }),
);

/** The events section's first rows, and the most the page keeps as the live stream adds more. */
const eventRows = 25;
const maxEventRows = 200;

export function overviewRoutes(
  app: Hono<GatewayEnv>,
  options: ConsoleOptions,
  access: ConsoleAccess,
  brokerCall: BrokerCall,
  tail: LiveTail | undefined,
): void {
  const allTypes = [...options.topology.actors.map((a) => a.type)];

  async function loadQueues(signal: AbortSignal): Promise<{
    queues?: QueueInfo[];
    deadLetters?: ListedDeadLetter[];
    error?: string;
  }> {
    if (!options.broker) return {};
    try {
      const [queues, dlq] = await Promise.all([
        brokerCall("/v2/queues", {}, signal).then((r) => (r.ok ? (r.json() as Promise<QueueInfo[]>) : [])),
        brokerCall("/v2/dlq?count=100&order=latestFirst", {}, signal).then(async (r) => {
          if (!r.ok) throw new Error(`the broker answered ${r.status} for the dead-letter queue`);
          return ((await r.json()) as { messages: DeadLetter[] }).messages;
        }),
      ]);
      return {
        queues: Array.isArray(queues) ? queues : [],
        deadLetters: await listDeadLetters(dlq, options.describeTarget),
      };
    } catch (error) {
      // As the events section does with the activity log: the page renders, and this section says what is missing.
      return {
        error:
          error instanceof EdgewiseError
            ? `Queue unreachable: the broker (the message queue) ${String(error.meta?.reason)}, so its queues and dead letters cannot be shown. Reload the page to try again.`
            : `The broker could not be read: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }

  /** The events section's first rows; undefined without an event log, null when it could not be read. */
  const latestEvents = async (): Promise<ConsoleLogEntry[] | null | undefined> => {
    if (!options.events) return undefined;
    try {
      return await options.events.latestActivity(eventRows);
    } catch {
      return null;
    }
  };
  /** The traces section's rows; undefined without a trace store, null when it could not be read. */
  const recentTraces = async () => {
    if (!options.traces) return undefined;
    try {
      return await options.traces.recentTraces(20);
    } catch {
      return null;
    }
  };

  app.get(
    "/_console",
    describeRoute({
      summary:
        "The operator console (admin): an HTML page; a browser signs in once with ?token=, which moves into a cookie",
      tags: ["operations"],
      ...requires("admin", {
        200: { description: "The console", content: { "text/html": { schema: { type: "string" } } } },
        303: { description: "Signed in: the session cookie is set, and the token leaves the address bar" },
        // A browser (Accept: text/html) gets a page saying why; any other client the API's problem+json.
        400: problemOrPage(400, "The address has a query the console does not take"),
        401: problemOrPage(401, "No admin session or token: a browser gets the sign-in page"),
        403: problemOrPage(403, "The token has no admin scope"),
      }),
    }),
    pageChecked(validate("query", OverviewQuery), "Invalid console address", { documented: true }),
    async (c) => {
      const session = access.sessionOf(c);
      const [queues, events, traces] = await Promise.all([
        loadQueues(c.req.raw.signal),
        latestEvents(),
        recentTraces(),
      ]);
      const notice = notices.get(c.req.valid("query").notice ?? "");
      return page(
        c,
        <Layout title="Overview">
          {notice ? <p class="notice-bar">{notice}</p> : null}
          <section id="topology">
            <h2>Topology</h2>
            <TopologyDiagram topology={options.topology} />
            <ActorTable topology={options.topology} />
          </section>
          <section id="events">
            <h2>
              {tail ? "Live events" : "Latest events"}{" "}
              {events === undefined ? null : (
                <span id="events-status" class="status" data-state="static">
                  as of page load
                </span>
              )}{" "}
              <span class="muted">updated </span>
              <span id="events-updated" class="muted">
                {new Date().toISOString()}
              </span>
            </h2>
            {events === undefined ? (
              <p>no event log configured</p>
            ) : (
              <>
                {events === null ? <p class="error">The activity log could not be read.</p> : null}
                {tail ? null : <p class="muted">No live stream here: reload the page for newer events.</p>}
                <table
                  id="event-table"
                  data-stream={tail ? "/_console/events/stream" : undefined}
                  data-after={events?.[0]?.position ?? (events === null ? undefined : "0")}
                  data-max-rows={String(maxEventRows)}
                >
                  <thead>
                    <tr>
                      <th>time</th>
                      <th>type</th>
                      <th>subject</th>
                      <th>data</th>
                    </tr>
                  </thead>
                  <tbody id="event-rows">
                    <EventRows events={(events ?? []).map((entry) => entry.envelope)} />
                  </tbody>
                </table>
              </>
            )}
          </section>
          <section id="breakers">
            <h2>Breakers</h2>
            <BreakerTable breakers={options.breakers?.()} />
          </section>
          <section id="queues">
            <h2>Queues and dead letters</h2>
            <QueuesSection
              queues={queues.queues}
              deadLetters={queues.deadLetters}
              error={queues.error}
              csrf={session.csrf}
            />
          </section>
          <section id="inspector">
            <h2>Inspect an actor</h2>
            {options.inspect ? <InspectorForm types={allTypes} /> : <p>actors run on a remote host</p>}
          </section>
          <section id="traces">
            <h2>Recent traces</h2>
            {options.traces === undefined && options.tracesElsewhere !== undefined ? (
              <p id="tracing-off">{options.tracesElsewhere}</p>
            ) : (
              <TraceList traces={traces} />
            )}
          </section>
          <section>
            <form method="post" action="/_console/logout">
              <input type="hidden" name="csrf" value={session.csrf} />
              <button type="submit">Sign out</button>
            </form>
          </section>
        </Layout>,
      );
    },
  );
}
