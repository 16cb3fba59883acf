// The console's pages, server-rendered with Hono's JSX: no inline script or style (the CSP allows 'self' only).
import type { Child, FC } from "hono/jsx";
import type { Envelope } from "../../shared/envelope/index.ts";
import type { BreakerSnapshot } from "../../shared/resilience/index.ts";
import { type ListedDeadLetter, maskedUrl } from "./dead-letters.ts";
import type { ActorInspection, ConsoleSpan, ConsoleTopology, TraceSummary } from "./types.ts";

/** `refresh`: an address of this origin the page moves on to at once (a navigation this origin starts). */
export const Layout: FC<{ title: string; refresh?: string; children?: Child }> = (props) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      {props.refresh === undefined ? null : <meta http-equiv="refresh" content={`0; url=${props.refresh}`} />}
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{`${props.title} · Edgewise console`}</title>
      <link rel="icon" href="data:," />
      <link rel="stylesheet" href="/_console/static/console.css" />
      <script src="/_console/static/console.js" defer />
    </head>
    <body>
      <header>
        <a href="/_console" class="brand">
          Edgewise console
        </a>
        <nav>
          <a href="/_console#topology">Topology</a>
          <a href="/_console#events">Events</a>
          <a href="/_console#breakers">Breakers</a>
          <a href="/_console#queues">Queues</a>
          <a href="/_console#inspector">Inspector</a>
          <a href="/_console#traces">Traces</a>
        </nav>
      </header>
      <main>{props.children}</main>
    </body>
  </html>
);

export const Notice: FC<{ title: string; message: string; hint?: string }> = (props) => (
  <Layout title={props.title}>
    <section class="notice">
      <h1>{props.title}</h1>
      <p>{props.message}</p>
      {props.hint ? <p class="hint">{props.hint}</p> : null}
    </section>
  </Layout>
);

const boxWidth = 190;
const boxHeight = 26;
const rowGap = 34;

/** Events on the left, actors and consumers on the right, one line per subscription. */
export const TopologyDiagram: FC<{ topology: ConsoleTopology }> = ({ topology }) => {
  const events = [...new Set(topology.subscriptions.map((s) => s.event))].sort();
  const actorTypes = topology.actors.map((a) => a.type);
  const targets = [
    ...new Set([...actorTypes, ...topology.consumers, ...topology.subscriptions.map((s) => s.actor)]),
  ];
  const consumerSet = new Set(topology.consumers.filter((c) => !actorTypes.includes(c)));
  const rows = Math.max(events.length, targets.length, 1);
  const height = rows * rowGap + 40;
  const width = 640;
  const leftX = 10;
  const rightX = width - boxWidth - 10;
  const yOf = (index: number, count: number) => 30 + index * rowGap + ((rows - count) * rowGap) / 2;
  return (
    <svg
      id="topology-diagram"
      class="diagram"
      viewBox={`0 0 ${width} ${height}`}
      width={width}
      height={height}
      role="img"
      aria-label="Event types and the actors and consumers subscribed to them"
    >
      <text x={leftX} y={16} class="col">
        event types
      </text>
      <text x={rightX} y={16} class="col">
        actors and consumers
      </text>
      {topology.subscriptions.map((s) => {
        const from = events.indexOf(s.event);
        const to = targets.indexOf(s.actor);
        const y1 = yOf(from, events.length) + boxHeight / 2;
        const y2 = yOf(to, targets.length) + boxHeight / 2;
        return (
          <line
            x1={leftX + boxWidth}
            y1={y1}
            x2={rightX}
            y2={y2}
            class="edge"
            stroke="#7a8ca3"
            stroke-width="1.2"
            data-event={s.event}
            data-actor={s.actor}
          />
        );
      })}
      {events.map((event, i) => (
        <g class="node event" data-event={event}>
          <rect
            x={leftX}
            y={yOf(i, events.length)}
            width={boxWidth}
            height={boxHeight}
            rx="4"
            fill="#fff5d6"
            stroke="#c9a227"
          />
          <text x={leftX + 8} y={yOf(i, events.length) + 17}>
            {event}
          </text>
        </g>
      ))}
      {targets.map((target, i) => {
        const consumer = consumerSet.has(target);
        return (
          <g class={consumer ? "node consumer" : "node actor"} data-type={target}>
            <rect
              x={rightX}
              y={yOf(i, targets.length)}
              width={boxWidth}
              height={boxHeight}
              rx="4"
              fill={consumer ? "#e3f4e8" : "#e2ecfb"}
              stroke={consumer ? "#3f8f5a" : "#3c6fb6"}
            />
            <text x={rightX + 8} y={yOf(i, targets.length) + 17}>
              {`${target}${consumer ? " (consumer)" : ""}`}
            </text>
          </g>
        );
      })}
    </svg>
  );
};

export const ActorTable: FC<{ topology: ConsoleTopology }> = ({ topology }) => (
  <table id="actor-types">
    <thead>
      <tr>
        <th>actor type</th>
        <th>accepts</th>
        <th>hears</th>
      </tr>
    </thead>
    <tbody>
      {topology.actors.map((actor) => (
        <tr data-type={actor.type}>
          <td>{actor.type}</td>
          <td>{actor.messages.join(", ")}</td>
          <td>
            {topology.subscriptions
              .filter((s) => s.actor === actor.type)
              .map((s) => s.event)
              .join(", ")}
          </td>
        </tr>
      ))}
      {topology.consumers.map((consumer) => (
        <tr data-type={consumer} class="consumer">
          <td>{consumer} (consumer)</td>
          <td>—</td>
          <td>
            {topology.subscriptions
              .filter((s) => s.actor === consumer)
              .map((s) => s.event)
              .join(", ")}
          </td>
        </tr>
      ))}
    </tbody>
  </table>
);

const time = (ms: number | undefined) => (ms === undefined ? "" : new Date(ms).toISOString());

export const EventRows: FC<{ events: Envelope[] }> = ({ events }) => (
  <>
    {events.length === 0 ? (
      <tr class="empty">
        <td colspan={4}>no events yet</td>
      </tr>
    ) : (
      events.map((e) => (
        <tr data-event-id={e.id}>
          <td>{e.time ?? ""}</td>
          <td>{e.type}</td>
          <td>{e.subject ?? ""}</td>
          <td class="mono">{truncate(JSON.stringify(e.data ?? null), 160)}</td>
        </tr>
      ))
    )}
  </>
);

const truncate = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);

export const BreakerTable: FC<{ breakers: BreakerSnapshot[] | undefined }> = ({ breakers }) =>
  breakers === undefined ? (
    <p>no breakers configured</p>
  ) : (
    <table id="breaker-table">
      <thead>
        <tr>
          <th>dependency</th>
          <th>state</th>
          <th>failure rate</th>
          <th>slow rate</th>
          <th>calls</th>
          <th>consecutive failures</th>
          <th>half-opens at</th>
        </tr>
      </thead>
      <tbody>
        {breakers.length === 0 ? (
          <tr>
            <td colspan={7}>no breaker has been used yet</td>
          </tr>
        ) : (
          breakers.map((b) => (
            <tr data-breaker={b.name}>
              <td>{b.name}</td>
              <td class={`state state-${b.state.replace(/[^a-z-]/g, "")}`}>
                {b.forced ? `${b.state} (forced)` : b.state}
              </td>
              <td>{`${(b.failureRate * 100).toFixed(1)}%`}</td>
              <td>{`${(b.slowRate * 100).toFixed(1)}%`}</td>
              <td>{b.calls}</td>
              <td>{b.consecutiveFailures}</td>
              <td>{time(b.halfOpensAt)}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
  );

export interface QueueInfo {
  name: string;
  parallelism?: number;
  paused?: boolean;
  lag?: number;
}

const CsrfField: FC<{ csrf: string }> = ({ csrf }) => <input type="hidden" name="csrf" value={csrf} />;

/** The queues and dead letters; when the broker could not be read, a notice saying so instead of either table. */
export const QueuesSection: FC<{
  queues: QueueInfo[] | undefined;
  deadLetters: ListedDeadLetter[] | undefined;
  error?: string | undefined;
  csrf: string;
}> = (props) =>
  // No table: an empty one would say there is nothing, when the broker could not be asked.
  props.error ? (
    <p id="broker-error" class="error">
      {props.error}
    </p>
  ) : (
    <QueueTables queues={props.queues} deadLetters={props.deadLetters} csrf={props.csrf} />
  );

const QueueTables: FC<{
  queues: QueueInfo[] | undefined;
  deadLetters: ListedDeadLetter[] | undefined;
  csrf: string;
}> = (props) => (
  <>
    <h3>Queues</h3>
    {props.queues === undefined ? (
      <p>no broker configured</p>
    ) : props.queues.length === 0 ? (
      <p>no named queues</p>
    ) : (
      <table id="queue-table">
        <thead>
          <tr>
            <th>queue</th>
            <th>lag</th>
            <th>parallelism</th>
            <th>paused</th>
          </tr>
        </thead>
        <tbody>
          {props.queues.map((q) => (
            <tr>
              <td>{q.name}</td>
              <td>{q.lag ?? ""}</td>
              <td>{q.parallelism ?? ""}</td>
              <td>{q.paused ? "yes" : "no"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
    <h3>Dead letters</h3>
    {props.deadLetters === undefined ? (
      <p>no broker configured</p>
    ) : (
      <>
        <table id="dlq-table">
          <thead>
            <tr>
              <th>dead since</th>
              <th>target</th>
              <th>message</th>
              <th>status</th>
              <th>retried</th>
              <th>actions</th>
            </tr>
          </thead>
          <tbody>
            {props.deadLetters.length === 0 ? (
              <tr class="empty">
                <td colspan={6}>the dead-letter queue is empty</td>
              </tr>
            ) : (
              props.deadLetters.map((d) => (
                <tr data-dlq-id={d.dlqId} data-url={d.url}>
                  <td>{time(d.createdAt)}</td>
                  <td class="target" title={d.url}>
                    <DeadLetterTarget letter={d} />
                    <details class="raw">
                      <summary>delivery URL</summary>
                      <span class="mono">{d.url}</span>
                    </details>
                  </td>
                  <td class="message">{d.messageType ?? ""}</td>
                  <td>{d.responseStatus ?? d.error ?? ""}</td>
                  <td>{d.retried ?? 0}</td>
                  <td class="actions">
                    <form method="post" action={`/_console/dlq/${encodeURIComponent(d.dlqId)}/retry`}>
                      <CsrfField csrf={props.csrf} />
                      <button type="submit" class="replay">
                        Replay
                      </button>
                    </form>
                    <form method="post" action={`/_console/dlq/${encodeURIComponent(d.dlqId)}/delete`}>
                      <CsrfField csrf={props.csrf} />
                      <button type="submit" class="delete">
                        Delete
                      </button>
                    </form>
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
        {props.deadLetters.length > 0 ? (
          <form method="post" action="/_console/dlq/purge" class="purge">
            <CsrfField csrf={props.csrf} />
            <button type="submit" class="purge">
              Purge every dead letter
            </button>
          </form>
        ) : null}
      </>
    )}
  </>
);

/**
 * A dead letter's target as an operator knows it: what the system says it is (a webhook subscription and the URL
 * it posts to, its query values masked: maskedUrl), else the actor's address; the broker's delivery URL only when neither is known.
 */
const DeadLetterTarget: FC<{ letter: ListedDeadLetter }> = ({ letter }) => {
  const { description, target } = letter;
  const address = target ? `${target.type}/${target.key}` : undefined;
  return (
    <div class="what">
      {description ? (
        <>
          <div>{description.label}</div>
          {description.url ? <div class="mono">{maskedUrl(description.url)}</div> : null}
          {description.note ? <div class="muted">{description.note}</div> : null}
        </>
      ) : (
        <div class="mono">{address ?? letter.url}</div>
      )}
      {letter.undescribed ? <div class="muted">(its details could not be read)</div> : null}
    </div>
  );
};

export const InspectorForm: FC<{ types: string[]; type?: string; key?: string }> = (props) => (
  <form method="get" action="/_console/actors" class="inspector">
    <label>
      type{" "}
      <select name="type">
        {props.types.map((t) => (
          <option value={t} selected={t === props.type}>
            {t}
          </option>
        ))}
      </select>
    </label>{" "}
    <label>
      key <input name="key" value={props.key ?? ""} required />
    </label>{" "}
    <button type="submit">Inspect</button>
  </form>
);

export const ActorView: FC<{ type: string; actorKey: string; inspection: ActorInspection }> = (props) => {
  const { inspection } = props;
  return (
    <section id="actor">
      <h1>
        Actor <span class="mono">{`${props.type}/${props.actorKey}`}</span>
      </h1>
      <p>
        {`version ${inspection.version ?? "— (never committed)"} · inbox ${inspection.inboxSize} · outbox ${inspection.outboxSize} · timers ${inspection.timers.length}`}
      </p>
      <h2>State</h2>
      <pre id="actor-state">{JSON.stringify(inspection.state ?? null, null, 2)}</pre>
      <h2>Inbox (handled message ids, newest first)</h2>
      <table id="actor-inbox">
        <tbody>
          {(inspection.inbox ?? []).map((row) => (
            <tr>
              <td class="mono">{row.id}</td>
              <td>{time(row.at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Outbox (not yet relayed)</h2>
      <table id="actor-outbox">
        <tbody>
          {(inspection.outbox ?? []).length === 0 ? (
            <tr>
              <td>empty</td>
            </tr>
          ) : (
            (inspection.outbox ?? []).map((row) => (
              <tr>
                <td>{row.seq}</td>
                <td>{row.type}</td>
                <td>{row.target ?? ""}</td>
                <td>{`attempts ${row.attempts}`}</td>
                <td>{row.retryAt ? time(row.retryAt) : ""}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
      <h2>Timers</h2>
      <table id="actor-timers">
        <tbody>
          {inspection.timers.map((timer) => (
            <tr>
              <td>{timer.id}</td>
              <td>{timer.type}</td>
              <td>{time(timer.at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
};

/** `undefined`: no trace store here; `null`: it could not be read. */
export const TraceList: FC<{ traces: TraceSummary[] | null | undefined }> = ({ traces }) =>
  traces === undefined ? (
    <p id="tracing-off">tracing not configured</p>
  ) : traces === null ? (
    <p class="error">The trace store could not be read. Reload the page to try again.</p>
  ) : traces.length === 0 ? (
    <p>no traces recorded yet</p>
  ) : (
    <table id="trace-table">
      <thead>
        <tr>
          <th>trace</th>
          <th>root</th>
          <th>started</th>
          <th>duration</th>
          <th>spans</th>
        </tr>
      </thead>
      <tbody>
        {traces.map((t) => (
          <tr data-trace-id={t.traceId}>
            <td class="mono">
              <a href={`/_console/traces/${encodeURIComponent(t.traceId)}`}>{t.traceId}</a>
            </td>
            <td>{t.name ?? ""}</td>
            <td>{time(t.startTimeMs)}</td>
            <td>{t.durationMs === undefined ? "" : `${t.durationMs.toFixed(1)} ms`}</td>
            <td>{t.spanCount ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );

/** Spans in tree order (parents before children), each a bar on a shared time axis. */
export const Waterfall: FC<{ traceId: string; spans: ConsoleSpan[] }> = ({ traceId, spans }) => {
  const ordered = treeOrder(spans);
  const start = Math.min(...spans.map((s) => s.startTimeMs));
  const end = Math.max(...spans.map((s) => s.endTimeMs));
  const total = Math.max(end - start, 0.001);
  const labelWidth = 320;
  const barsWidth = 560;
  const row = 22;
  const height = ordered.length * row + 30;
  return (
    <svg
      id="waterfall"
      class="waterfall"
      viewBox={`0 0 ${labelWidth + barsWidth + 90} ${height}`}
      width={labelWidth + barsWidth + 90}
      height={height}
      role="img"
      aria-label={`Waterfall of trace ${traceId}`}
    >
      <text x={labelWidth} y={14} class="col">
        {`0 ms — ${total.toFixed(1)} ms`}
      </text>
      {ordered.map(({ span, depth }, i) => {
        const x = labelWidth + ((span.startTimeMs - start) / total) * barsWidth;
        const width = Math.max(((span.endTimeMs - span.startTimeMs) / total) * barsWidth, 1.5);
        const y = 22 + i * row;
        const failed = span.status !== undefined && /error/i.test(String(span.status));
        return (
          <g class="span" data-span-id={span.spanId}>
            <title>{`${span.name}${span.kind !== undefined ? ` [${span.kind}]` : ""}`}</title>
            <text x={4 + depth * 8} y={y + 14}>
              {truncate(
                `${span.name}${span.kind !== undefined ? ` [${span.kind}]` : ""}`,
                Math.max(48 - depth, 24),
              )}
            </text>
            <rect
              x={x}
              y={y + 3}
              width={width}
              height={row - 8}
              rx="2"
              fill={failed ? "#d9534f" : "#4a7fc1"}
            />
            <text x={x + width + 4} y={y + 14} class="dur">
              {`${(span.endTimeMs - span.startTimeMs).toFixed(1)} ms`}
            </text>
          </g>
        );
      })}
    </svg>
  );
};

function treeOrder(spans: ConsoleSpan[]): Array<{ span: ConsoleSpan; depth: number }> {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, ConsoleSpan[]>();
  const roots: ConsoleSpan[] = [];
  for (const span of [...spans].sort((a, b) => a.startTimeMs - b.startTimeMs)) {
    if (span.parentSpanId && ids.has(span.parentSpanId)) {
      const list = children.get(span.parentSpanId) ?? [];
      list.push(span);
      children.set(span.parentSpanId, list);
    } else roots.push(span);
  }
  const out: Array<{ span: ConsoleSpan; depth: number }> = [];
  const seen = new Set<string>();
  const walk = (span: ConsoleSpan, depth: number) => {
    if (seen.has(span.spanId)) return;
    seen.add(span.spanId);
    out.push({ span, depth });
    for (const child of children.get(span.spanId) ?? []) walk(child, Math.min(depth + 1, 12));
  };
  for (const root of roots) walk(root, 0);
  return out;
}
