// The actor inspector's views: its form, and an actor's page (its state, inbox, outbox and timers).
import type { FC } from "hono/jsx";
import type { ActorInspection } from "../types.ts";
import { time } from "./format.ts";

export const InspectorForm: FC<{ types: string[]; type?: string; actorKey?: string }> = (props) => (
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
      key <input name="key" value={props.actorKey ?? ""} required />
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
