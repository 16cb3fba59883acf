// The operator console at /_console: topology, live events, breakers, queues and dead letters, actors, traces.
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { raw } from "hono/html";
import type { Child } from "hono/jsx";
import { streamSSE } from "hono/streaming";
import { describeRoute } from "hono-openapi";
import * as v from "valibot";
import {
  actorKeyRule,
  actorTypeRule,
  isValidActorKey,
  isValidActorType,
} from "../../actors/runtime/index.ts";
import { EdgewiseError } from "../../shared/errors/index.ts";
import { isTimeout } from "../../shared/resilience/index.ts";
import { errorFields } from "../../shared/telemetry/log/index.ts";
import type { GatewayEnv } from "../env.ts";
import type { JwtOptions } from "../middleware/auth/jwt.ts";
import { validate } from "../middleware/validation/index.ts";
import { requires } from "../openapi.ts";
import { type DeadLetter, type ListedDeadLetter, listDeadLetters } from "./dead-letters.ts";
import { isPosition, LiveTail } from "./live.ts";
import { consoleSessions, type Session, sameToken } from "./session.ts";
import { consoleScript, consoleStyles } from "./static.ts";
import type { ActorInspection, ConsoleLogEntry, ConsoleOptions, ConsoleSpan } from "./types.ts";
import {
  ActorTable,
  ActorView,
  BreakerTable,
  EventRows,
  InspectorForm,
  Layout,
  Notice,
  type QueueInfo,
  QueuesSection,
  TopologyDiagram,
  TraceList,
  Waterfall,
} from "./views.tsx";

export type {
  ConsoleEventLog,
  ConsoleLogEntry,
  ConsoleOptions,
  ConsoleSpan,
  ConsoleTopology,
  ConsoleTraces,
  LiveOptions,
  TargetDescription,
  TraceSummary,
} from "./types.ts";

/**
 * Scripts and styles from this origin only (no inline code, so no nonce either); forms post only here; the live
 * event stream (EventSource) connects only here; nothing frames the console.
 */
export const consolePolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Whether a path is the console's: its pages, forms, assets and live stream, all under `/_console`. */
export const isConsolePath = (path: string): boolean => path === "/_console" || path.startsWith("/_console/");

/**
 * The inspector's address, as every host checks an actor's: a malformed or oversized type or key is refused here,
 * before any host is asked (an unknown type was echoed back whole in "No actor type … is registered here").
 */
const ActorParams = v.object({
  type: v.pipe(
    v.string(),
    v.maxLength(64, `must be ${actorTypeRule}`),
    v.check((type) => isValidActorType(type), `must be ${actorTypeRule}`),
  ),
  key: v.pipe(
    v.string(),
    v.maxLength(256, `must be ${actorKeyRule}`),
    v.check((key) => isValidActorKey(key), `must be ${actorKeyRule}`),
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

export function consoleRoutes(options: ConsoleOptions & { auth?: JwtOptions | undefined }): Hono<GatewayEnv> {
  const sessions = options.sessionStore ?? consoleSessions(options.auth, options.sessions);
  // The admin session of each request the guard let through.
  const admitted = new WeakMap<Request, Session & { kind: "admin" }>();
  const app = new Hono<GatewayEnv>();
  const page = (c: Context, node: Child, status: 200 | 400 | 401 | 403 | 404 | 502 | 503 = 200) => {
    c.header("Content-Security-Policy", consolePolicy);
    c.header("Cache-Control", "no-store");
    return c.html(
      <>
        {raw("<!DOCTYPE html>")}
        {node}
      </>,
      status,
    );
  };
  /** A console page that is not there: a browser gets the page, any other client the API's problem+json. */
  const notFound = (c: Context, title: string, message: string) =>
    refused(c, title, new EdgewiseError("not_found", message));
  /** A request the console refuses (4xx): a browser gets a page saying why, any other client the problem+json. */
  const refused = (c: Context, title: string, error: EdgewiseError) => {
    if (!wantsHtml(c)) throw error;
    return page(c, <Notice title={title} message={sentence(error.message)} />, error.status as 400 | 404);
  };
  /**
   * A request validator (`validate(…)`) on a console page: what it refuses is a page for a browser and the API's
   * problem+json for any other client, as the console's other refusals. Only its own refusal: what the route
   * throws after it passed is the route's.
   */
  const pageChecked = <Check extends MiddlewareHandler>(check: Check, title: string): Check => {
    const checked: MiddlewareHandler = async (c, next) => {
      let passed = false;
      try {
        return await check(c, async () => {
          passed = true;
          await next();
        });
      } catch (error) {
        if (passed || !(error instanceof EdgewiseError)) throw error;
        return refused(c, title, error);
      }
    };
    return checked as Check;
  };
  /**
   * A dependency the page needs is down (`unavailable`, 503): a browser gets a console page saying so, with the
   * error's Retry-After, logged at warn as the error handler logs a 503 for other clients (a dependency down, not a
   * bug); any other client gets the problem+json.
   */
  const unavailable = (c: Context<GatewayEnv>, title: string, error: EdgewiseError, hint: string) => {
    if (!wantsHtml(c)) throw error;
    c.var.log?.warn("request failed", { method: c.req.method, path: c.req.path, error: errorFields(error) });
    const retryAfter = error.meta?.retryAfterSeconds;
    if (typeof retryAfter === "number") c.header("Retry-After", String(retryAfter));
    return page(c, <Notice title={title} message={sentence(error.message)} hint={hint} />, 503);
  };

  app.get("/_console/static/console.js", (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.body(consoleScript, 200, { "content-type": "text/javascript; charset=utf-8" });
  });
  app.get("/_console/static/console.css", (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.body(consoleStyles, 200, { "content-type": "text/css; charset=utf-8" });
  });

  // Every other console route needs an admin: a Bearer token, the session cookie, or `?token=` (once).
  app.use("/_console", guard);
  app.use("/_console/*", guard);
  async function guard(c: Context<GatewayEnv>, next: () => Promise<void>) {
    const url = new URL(c.req.url);
    const token = url.searchParams.get("token");
    let session: Session;
    if (token !== null && c.req.method === "GET") {
      session = await sessions.login(c, token);
      if (session.kind === "admin") {
        // The token leaves the address bar (and the history, and Referer) at once: the cookie carries it.
        url.searchParams.delete("token");
        const target = `${url.pathname}${url.search}${url.hash}`;
        c.header("Cache-Control", "no-store");
        c.header("Referrer-Policy", "no-referrer");
        // A navigation another site started (a link in a runbook or a chat) does not send the SameSite=Strict
        // cookie, nor does a redirect it follows, nor a reload: the console would ask to sign in again. A page of
        // this origin moves on instead, and its navigation sends the cookie.
        const site = c.req.header("sec-fetch-site");
        if (site === "cross-site" || site === "same-site") {
          return page(
            c,
            <Layout title="Signed in" refresh={target}>
              <section class="notice">
                <h1>Signed in</h1>
                <p>
                  <a href={target}>Continue to the console</a>
                </p>
              </section>
            </Layout>,
          );
        }
        return c.redirect(target, 303);
      }
    } else {
      session = await sessions.resolve(c);
    }
    if (session.kind === "anonymous" || session.kind === "invalid" || session.kind === "ended") {
      c.header("WWW-Authenticate", 'Bearer realm="edgewise-console"');
      const message =
        session.kind === "invalid"
          ? `The console refused the token (${session.reason}).`
          : session.kind === "ended"
            ? "The console session has ended (signed out, expired, or no longer valid here)."
            : "The console needs an admin token.";
      // A browser gets the sign-in page; any other client the API's problem+json (API.md: every error is one).
      if (!wantsHtml(c)) throw new EdgewiseError("unauthorized", message);
      return page(
        c,
        <Notice
          title="Sign in"
          message={message}
          hint="Open /_console?token=<an admin JWT> once: it opens a console session (an HttpOnly cookie) and leaves the address bar. A Bearer header works too."
        />,
        401,
      );
    }
    if (session.kind === "forbidden") {
      if (!wantsHtml(c))
        throw new EdgewiseError("forbidden", "The console is for admins: the token has no admin scope.");
      return page(
        c,
        <Notice title="Forbidden" message="The console is for admins: the token has no admin scope." />,
        403,
      );
    }
    admitted.set(c.req.raw, session);
    await next();
  }
  const sessionOf = (c: Context<GatewayEnv>) => {
    const session = admitted.get(c.req.raw);
    if (!session) throw new EdgewiseError("unauthorized", "authentication required");
    return session;
  };

  /**
   * A call to the broker's REST API, through the node's `broker` breaker and timeout when it gives one
   * (`broker.guard`), as its relays' publishes are: while the breaker is open, the console answers at once instead of
   * waiting out the timeout, and its failures count towards opening it. No answer (refused, reset, timed out, the
   * breaker open) or a 5xx is `unavailable`, a 503 like any dependency that is down; another answer (a 4xx, such as
   * a dead letter deleted meanwhile) is the broker answering, the caller's to read.
   */
  async function brokerCall(path: string, init: RequestInit = {}, signal?: AbortSignal): Promise<Response> {
    const broker = options.broker as NonNullable<ConsoleOptions["broker"]>;
    const url = `${broker.url.replace(/\/+$/, "")}${path}`;
    const call = async (callSignal: AbortSignal) => {
      const response = await (broker.fetch ?? fetch)(url, {
        ...init,
        headers: { authorization: `Bearer ${broker.token}`, ...(init.headers ?? {}) },
        signal: callSignal,
      });
      if (response.status >= 500) {
        await response.body?.cancel();
        // Thrown inside the guard, so the breaker counts it as a failure (a 4xx, returned, counts as an answer).
        throw brokerUnavailable(`answered ${response.status}`, false);
      }
      return response;
    };
    try {
      return broker.guard
        ? await broker.guard(call, signal)
        : await call(
            signal
              ? AbortSignal.any([signal, AbortSignal.timeout(brokerTimeoutMs)])
              : AbortSignal.timeout(brokerTimeoutMs),
          );
    } catch (error) {
      throw asBrokerFailure(error);
    }
  }

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

  const allTypes = [...options.topology.actors.map((a) => a.type)];

  const eventRows = 25;
  const maxEventRows = 200;
  const live = options.live === false ? undefined : options.live;
  const maxStreams = live?.maxStreams ?? 32;
  const heartbeatMs = live?.heartbeatMs ?? 15_000;
  const tail = options.events && options.live !== false ? new LiveTail(options.events, live) : undefined;
  /** Streams admitted but still waiting for the end of the log (they count towards the limit). */
  let opening = 0;
  if (tail && options.signal) {
    if (options.signal.aborted) tail.close();
    else options.signal.addEventListener("abort", () => tail.close(), { once: true });
  }

  app.get(
    "/_console",
    describeRoute({
      summary:
        "The operator console (admin): an HTML page; a browser signs in once with ?token=, which moves into a cookie",
      tags: ["operations"],
      parameters: [
        {
          in: "query",
          name: "token",
          required: false,
          description: "An admin JWT: answered 303 to /_console with an HttpOnly session cookie",
          schema: { type: "string" },
        },
      ],
      ...requires("admin", {
        200: { description: "The console", content: { "text/html": { schema: { type: "string" } } } },
        303: { description: "Signed in: the session cookie is set, and the token leaves the address bar" },
      }),
    }),
    async (c) => {
      const session = sessionOf(c);
      const [queues, events, traces] = await Promise.all([
        loadQueues(c.req.raw.signal),
        latestEvents(),
        recentTraces(),
      ]);
      const notice = notices.get(c.req.query("notice") ?? "");
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

  // The live event stream: Server-Sent Events, one `activity` frame per new entry of the log, its position as
  // the frame's id. EventSource sends the last id back as Last-Event-ID when it reconnects, and the stream resumes
  // right after it; the page's first connection names the newest row it rendered (`?after=`).
  app.get("/_console/events/stream", async (c) => {
    const session = sessionOf(c);
    if (!tail) throw new EdgewiseError("not_found", "no live event stream here");
    const after = c.req.header("last-event-id") ?? c.req.query("after");
    if (after !== undefined && !isPosition(after)) {
      throw new EdgewiseError(
        "request.invalid",
        "Last-Event-ID and ?after= take a position in the activity log",
      );
    }
    if (tail.closed) throw new EdgewiseError("unavailable", "the node is shutting down");
    if (tail.size + opening >= maxStreams) {
      throw new EdgewiseError("unavailable", `at most ${maxStreams} console event streams are open at once`, {
        meta: { retryAfterSeconds: 10 },
      });
    }
    let subscription: Awaited<ReturnType<LiveTail["subscribe"]>>;
    opening++;
    try {
      subscription = await tail.subscribe(after);
    } catch (error) {
      throw new EdgewiseError("unavailable", "the activity log cannot be read", { cause: error });
    } finally {
      opening--;
    }
    // A session's stream ends with the session (sign-out, expiry), like its pages; a Bearer caller's with the request.
    let expiry: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      if (expiry !== undefined) clearTimeout(expiry);
      session.ended?.removeEventListener("abort", end);
      subscription.close();
    };
    c.req.raw.signal?.addEventListener("abort", end, { once: true });
    if (session.ended?.aborted) end();
    session.ended?.addEventListener("abort", end, { once: true });
    if (session.expiresAt !== undefined) {
      expiry = setTimeout(end, Math.min(Math.max(session.expiresAt - Date.now(), 0), 2 ** 31 - 1));
      (expiry as { unref?: () => void }).unref?.();
    }
    c.header("X-Accel-Buffering", "no");
    return streamSSE(c, async (stream) => {
      stream.onAbort(end);
      try {
        // How long EventSource waits before reconnecting; it also gets the headers and a first byte out at once.
        await stream.write("retry: 2000\n: live\n\n");
        for (;;) {
          const next = await subscription.next(heartbeatMs);
          if ("closed" in next || stream.aborted) return;
          if ("idle" in next) {
            await stream.write(": heartbeat\n\n");
            continue;
          }
          for (const entry of next.entries) {
            // JSON, not HTML: the page puts each field in with textContent.
            await stream.writeSSE({
              event: "activity",
              id: entry.position,
              data: JSON.stringify(entry.envelope),
            });
          }
        }
      } finally {
        end();
      }
    });
  });

  app.get("/_console/actors", (c) => {
    const type = c.req.query("type") ?? "";
    const key = c.req.query("key") ?? "";
    if (!type || !key) return c.redirect("/_console#inspector", 303);
    return c.redirect(`/_console/actors/${encodeURIComponent(type)}/${encodeURIComponent(key)}`, 303);
  });

  const checkedAddress = pageChecked(validate("param", ActorParams), "Invalid actor address");
  app.get("/_console/actors/:type/:key", checkedAddress, async (c) => {
    const { type, key } = c.req.valid("param");
    if (!options.inspect) {
      return notFound(c, "Not here", "Actors run on a remote host; inspect them there.");
    }
    let inspection: Awaited<ReturnType<NonNullable<ConsoleOptions["inspect"]>>>;
    try {
      inspection = await options.inspect({ type, key });
    } catch (error) {
      if (error instanceof EdgewiseError && error.code === "actor.unknown_type") {
        const known = allTypes.length > 0 ? `: the types here are ${allTypes.join(", ")}` : "";
        return refused(
          c,
          "No such actor type",
          new EdgewiseError("actor.unknown_type", `No actor type "${type}" is registered here${known}`),
        );
      }
      // Another refusal of the host (`actor.invalid_key`, should a host check more than the route): the request.
      if (error instanceof EdgewiseError && error.status < 500) {
        return refused(c, error.code === "actor.invalid_key" ? "Invalid actor key" : "Not inspected", error);
      }
      // Anything else is the host or its store failing (a closed or unreadable database, a host that is down):
      // a dependency down, not a missing actor, nor a bug of the console.
      return unavailable(
        c,
        "Actor store unreachable",
        new EdgewiseError(
          "unavailable",
          `the actor ${type}/${key} cannot be read: its host or its store is not answering`,
          {
            cause: error,
            ...(error instanceof EdgewiseError && typeof error.meta?.retryAfterSeconds === "number"
              ? { meta: { retryAfterSeconds: error.meta.retryAfterSeconds } }
              : {}),
          },
        ),
        "Reload to try again; the Breakers section shows the state of the node's dependencies.",
      );
    }
    if (neverSeen(inspection)) {
      return notFound(
        c,
        "No such actor",
        `There is no actor ${type}/${key}: it has never handled a message, and nothing is stored for it.`,
      );
    }
    return page(
      c,
      <Layout title={`${type}/${key}`}>
        <InspectorForm types={allTypes} type={type} key={key} />
        <ActorView type={type} actorKey={key} inspection={inspection} />
      </Layout>,
    );
  });

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

  // State changes: a form post with the session's CSRF token (the cookie is SameSite=Strict as well), or a
  // Bearer call, which no other site can make in the operator's name.
  // A browser's form gets a page saying what to do (most often: the page is from an earlier session, as signing in
  // again in another tab gives a new CSRF token); any other client the API's problem+json.
  async function checkForm(c: Context<GatewayEnv>): Promise<Response | undefined> {
    try {
      await checkFormOrThrow(c);
      return undefined;
    } catch (error) {
      if (!(error instanceof EdgewiseError) || error.code !== "forbidden" || !wantsHtml(c)) throw error;
      return page(
        c,
        <Notice
          title="Not done"
          message={`The console refused the form: ${error.message}.`}
          hint="This page may be from an earlier console session (signing in again starts a new one): reload the console and try again."
        />,
        403,
      );
    }
  }
  async function checkFormOrThrow(c: Context<GatewayEnv>): Promise<void> {
    const session = sessionOf(c);
    if (session.via === "bearer") return;
    // Origin is `null` on the console's own posts (its pages are `no-referrer`), and on any page that chooses so:
    // Sec-Fetch-Site, which a page cannot choose, tells another site's (or a sibling subdomain's) form apart.
    const origin = c.req.header("origin");
    const site = c.req.header("sec-fetch-site");
    if (
      (origin !== undefined && origin !== "null" && origin !== new URL(c.req.url).origin) ||
      (site !== undefined && site !== "same-origin" && site !== "none")
    ) {
      throw new EdgewiseError("forbidden", "a console form must come from the console");
    }
    const form = await c.req.parseBody();
    const csrf = typeof form.csrf === "string" ? form.csrf : "";
    if (!sameToken(csrf, session.csrf)) throw new EdgewiseError("forbidden", "missing or wrong CSRF token");
  }
  const back = (c: Context<GatewayEnv>, notice: string) =>
    c.redirect(`/_console?notice=${notice}#queues`, 303);
  const requireBroker = () => {
    if (!options.broker) throw new EdgewiseError("not_found", "no broker configured");
  };
  /**
   * A form's call to the broker, then back to the dead letters with `done` (or `failed` when the broker refused).
   * When the broker is unavailable, a browser gets a console page saying so, any other client the problem+json.
   */
  async function brokerForm(c: Context<GatewayEnv>, path: string, method: string, done: string) {
    requireBroker();
    let response: Response;
    try {
      response = await brokerCall(path, { method }, c.req.raw.signal);
    } catch (error) {
      if (!(error instanceof EdgewiseError)) throw error;
      return unavailable(
        c,
        "Broker unreachable",
        error,
        "Reload the console to see the dead letters as they are, and try again once the broker is back (the Breakers section shows its state).",
      );
    }
    await response.body?.cancel();
    return back(c, response.ok ? done : "failed");
  }

  // `/_console/dlq/purge` is matched as a parameter: a literal segment beside `:dlqId` would make Hono's
  // RegExpRouter refuse the route table, and every request of the node would go through the slower TrieRouter.
  app.post("/_console/dlq/:action", async (c) => {
    if (c.req.param("action") !== "purge")
      throw new EdgewiseError("not_found", `no route for POST ${c.req.path}`);
    const refused = await checkForm(c);
    if (refused) return refused;
    return brokerForm(c, "/v2/dlq", "DELETE", "purged");
  });
  app.post("/_console/dlq/:dlqId/retry", async (c) => {
    const refused = await checkForm(c);
    if (refused) return refused;
    return brokerForm(c, `/v2/dlq/retry/${encodeURIComponent(c.req.param("dlqId"))}`, "POST", "replayed");
  });
  app.post("/_console/dlq/:dlqId/delete", async (c) => {
    const refused = await checkForm(c);
    if (refused) return refused;
    return brokerForm(c, `/v2/dlq/${encodeURIComponent(c.req.param("dlqId"))}`, "DELETE", "deleted");
  });
  app.post("/_console/logout", async (c) => {
    const refused = await checkForm(c);
    if (refused) return refused;
    return page(c, <Notice title="Signed out" message={sessions.logout(c)} />);
  });

  return app;
}

/** How long a call to the broker may take when the node gives no guard (its `broker` policy's timeout otherwise). */
const brokerTimeoutMs = 5_000;

/** What a failed call to the broker is to the operator: `unavailable`, saying whether anything was changed. */
function asBrokerFailure(error: unknown): EdgewiseError {
  if (error instanceof EdgewiseError && error.code === "unavailable" && error.meta?.reason !== undefined) {
    return error;
  }
  if (error instanceof EdgewiseError && error.code === "breaker.open") {
    // Nothing was sent: the breaker refused the call before it was made.
    return brokerUnavailable(
      "is not called while its circuit breaker is open (it failed moments ago)",
      true,
      error,
      error.meta?.retryAfterSeconds,
    );
  }
  // A timeout may have reached the broker after all; a refused or reset connection did not.
  const timedOut = isTimeout(error) || (error as { name?: unknown } | null)?.name === "TimeoutError";
  return brokerUnavailable(timedOut ? "did not answer in time" : "could not be reached", !timedOut, error);
}

/**
 * The broker did not answer, or answered 5xx: `unavailable` (503), which the error handler logs as a dependency
 * down, not a bug. `unchanged`: whether the request surely never reached it (a refused or reset connection).
 */
function brokerUnavailable(
  reason: string,
  unchanged: boolean,
  cause?: unknown,
  retryAfterSeconds?: unknown,
): EdgewiseError {
  return new EdgewiseError(
    "unavailable",
    `the broker (the message queue) ${reason}: ${unchanged ? "nothing was changed" : "the console cannot tell whether the change was made"}`,
    { cause, meta: { reason, ...(typeof retryAfterSeconds === "number" ? { retryAfterSeconds } : {}) } },
  );
}

/** An error's message as a sentence on a page: a capital first letter and a full stop. */
function sentence(message: string): string {
  const text = `${message[0]?.toUpperCase() ?? ""}${message.slice(1)}`;
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/**
 * Whether nothing is stored for an actor: it has never committed a turn (every turn commits its state and version),
 * and holds no message or timer. Actors are virtual, so such an address is not an actor yet: its first message
 * creates it.
 */
function neverSeen(inspection: ActorInspection): boolean {
  return (
    inspection.version === undefined &&
    inspection.inboxSize === 0 &&
    inspection.outboxSize === 0 &&
    inspection.timers.length === 0
  );
}

/** A browser's navigation asks for HTML; `fetch`, curl, EventSource and monitoring probes do not. */
function wantsHtml(c: Context): boolean {
  return /\btext\/html\b/i.test(c.req.header("accept") ?? "");
}
