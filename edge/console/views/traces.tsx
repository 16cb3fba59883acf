// The console's trace views: the overview's list of recent traces, and one trace's spans as a waterfall.
import type { FC } from "hono/jsx";
import type { ConsoleSpan, TraceSummary } from "../types.ts";
import { time, truncate } from "./format.ts";

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
