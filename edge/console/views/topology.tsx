// The overview's topology section: event types and who hears them, as a diagram and as a table.
import type { FC } from "hono/jsx";
import type { ConsoleTopology } from "../types.ts";

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
