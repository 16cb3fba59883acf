// The node's load, sampled off the request path: how far behind the embedded broker is (admission), event-loop lag.
import { type AdmissionOptions, admission } from "../edge/middleware/admission/index.ts";
import type { Logger } from "../shared/telemetry/log/index.ts";
import type { EdgewiseMetrics, NodeLoad } from "../shared/telemetry/metrics/index.ts";
import type { Sql } from "./local/broker/db.ts";
import type { NodeOptions } from "./node-options.ts";
import type { Stop } from "./node-stop.ts";

export interface NodeLoadParts {
  options: NodeOptions;
  /** The embedded broker's database, when the broker is this node's: its oldest due message says how far behind. */
  brokerSql: Sql | undefined;
  metrics: EdgewiseMetrics;
  /** Whether a refused request repeats work already accepted (an order's Idempotency-Key): then it is let through. */
  repeatsAccepted?: AdmissionOptions["repeatsAccepted"];
  /** One warn line when admission starts refusing, one info line when it takes orders again. */
  logger: Logger;
  stops: Stop[];
}

/** How often the queues are read; a read never overlaps the previous one. */
const SAMPLE_MS = 250;
/**
 * A sample older than this is not trusted: a read of the broker that has not come back (its table locked, its
 * connection wedged, PGlite held by a backup's quiet instant) says nothing of the wait now. It counts as a failed read.
 * Unless reads have been slow: a busy database (PGlite's one connection under load: 1.5 to 3.8 s a read, measured)
 * answers every read late, and taking orders each time one is would open admission under the very load it is for.
 * So the bound is also STALE_FACTOR times the slowest of the last READS_KEPT reads that came back.
 */
const STALE_MS = 2_000;
const STALE_FACTOR = 4;
const READS_KEPT = 8;
/** Event-loop lag: a timer every 100 ms, the worst lateness kept over the last 5 s. */
const LAG_TICK_MS = 100;
const LAG_WINDOW = 50;

/** The requests that start new work on the reference system: placing an order (its saga follows). */
export const startsWork = (method: string, path: string) =>
  method === "POST" && (path === "/v1/orders" || path === "/v1/orders/");

export function nodeLoad(parts: NodeLoadParts) {
  const { options, brokerSql, metrics, logger, stops, repeatsAccepted } = parts;
  const maxBehindMs = options.config.EDGEWISE_MAX_QUEUE_DELAY;
  let brokerBehindMs = 0;
  // When the last read came back (monotonic), and whether the read under way has already been told stale.
  let sampledAt = performance.now();
  let toldStale = false;
  // How long the last reads that came back took (ms): what a read counts as stale against.
  const readTimes: number[] = [];
  const staleAfterMs = () => Math.max(STALE_MS, STALE_FACTOR * Math.max(0, ...readTimes));
  // Refusals since the node began refusing: a refusal itself is logged at debug (edge/errors.ts), so an episode
  // is told once at warn when it starts and once at info when it ends, neither silent nor a line per request.
  let refusedInEpisode = 0;
  const refused = () => {
    metrics.admissionRefused();
    if (refusedInEpisode++ > 0) return;
    logger.warn("admission: refusing new orders (503 overloaded) while the embedded broker is behind", {
      behind_ms: Math.round(brokerBehindMs),
      limit_ms: maxBehindMs,
    });
  };
  const episodeOver = (behind: number) => {
    if (refusedInEpisode === 0 || behind > maxBehindMs) return;
    logger.info("admission: taking new orders again", { refused: refusedInEpisode });
    refusedInEpisode = 0;
  };
  let reading: Promise<void> | undefined;
  const readBroker = async () => {
    if (!brokerSql) return;
    const startedAt = performance.now();
    try {
      // Claims go by due time (store-messages.ts claimDue): the oldest due message's wait is what a new one meets.
      const [row] = await brokerSql<Array<{ due: string | null }>>`
        SELECT min(due_at)::text AS due FROM qstash_messages WHERE state = 'pending' AND queue_name IS NULL`;
      brokerBehindMs = row?.due ? Math.max(0, Date.now() - Number(row.due)) : 0;
      readTimes.push(performance.now() - startedAt);
      if (readTimes.length > READS_KEPT) readTimes.shift();
    } catch {
      // A failing database is /readyz's and the breakers' to report; admission does not refuse on a guess.
      brokerBehindMs = 0;
    }
    sampledAt = performance.now();
    toldStale = false;
    episodeOver(brokerBehindMs);
  };
  // The wait as last read; once that read is older than its bound (staleAfterMs), 0 (unknown, as when a read
  // fails), said once.
  const behindMs = () => {
    const staleAfter = staleAfterMs();
    if (!brokerSql || performance.now() - sampledAt <= staleAfter) return brokerBehindMs;
    if (!toldStale) {
      toldStale = true;
      logger.warn(
        `admission: the broker's backlog has not been read for ${Math.round(staleAfter / 100) / 10} s; taking new orders`,
        {
          last_behind_ms: Math.round(brokerBehindMs),
          slowest_read_ms: Math.round(Math.max(0, ...readTimes)),
        },
      );
      episodeOver(0);
    }
    return 0;
  };
  const sample = () => {
    reading ??= readBroker().finally(() => {
      reading = undefined;
    });
  };
  // Read once at start too: a node restarted over a backlog is behind before its first interval has passed.
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  (sampler as { unref?: () => void }).unref?.();

  const lags = new Array<number>(LAG_WINDOW).fill(0);
  let lagAt = 0;
  let expected = performance.now() + LAG_TICK_MS;
  const lagTimer = setInterval(() => {
    const now = performance.now();
    lags[lagAt++ % LAG_WINDOW] = Math.max(0, now - expected);
    expected = now + LAG_TICK_MS;
  }, LAG_TICK_MS);
  (lagTimer as { unref?: () => void }).unref?.();

  stops.push(async () => {
    clearInterval(sampler);
    clearInterval(lagTimer);
    await reading;
  });

  const load: NodeLoad = {
    // Not the actors' outbox: it also grows while the broker is unreachable, and orders are taken then (the
    // outbox keeps them until the broker is back); an outage is /readyz's and the breakers' to report.
    behindMs,
    eventLoopLagMs: () => Math.max(...lags),
  };
  metrics.observeLoad(load);
  return {
    load,
    /** The gateway's admission middleware; none when EDGEWISE_MAX_QUEUE_DELAY is 0. */
    admission:
      maxBehindMs > 0
        ? admission({
            behindMs: load.behindMs,
            maxBehindMs,
            startsWork,
            ...(repeatsAccepted ? { repeatsAccepted } : {}),
            onRefused: refused,
          })
        : undefined,
  };
}
