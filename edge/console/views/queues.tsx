// The overview's queues section: the broker's queues and dead letters, with replay, delete and purge forms.
import type { FC } from "hono/jsx";
import { type ListedDeadLetter, maskedUrl } from "../dead-letters.ts";
import { time } from "./format.ts";

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
