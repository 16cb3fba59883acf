// The overview's breakers section: each dependency's circuit breaker, its state and its window's rates.
import type { FC } from "hono/jsx";
import type { BreakerSnapshot } from "../../../shared/resilience/index.ts";
import { time } from "./format.ts";

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
