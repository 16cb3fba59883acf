// The overview's events section: a row per activity-log entry, as the page first renders them.
import type { FC } from "hono/jsx";
import type { Envelope } from "../../../shared/envelope/index.ts";
import { truncate } from "./format.ts";

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
