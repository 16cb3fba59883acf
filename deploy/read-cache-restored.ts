// After `npm run restore`: the node's first start clears its read cache in Redis, and warns of an external queue.
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RatelimitRedis } from "../edge/middleware/rate-limit/upstash.ts";
import { errorFields, type Logger } from "../shared/telemetry/log/index.ts";

/**
 * The file restore leaves in the data dir: the node that starts on it next clears its read cache, then removes it.
 * Redis outlives a restore: its entries (values read after the backup point, and version floors above the restored
 * actors' versions) would serve the lost newer state for up to their TTL (60 s) and refuse fills for up to the
 * floor's (an hour).
 */
export const restoredMarker = "restored-read-cache";

/** Whether the data dir was restored and no node has started on it since (or its read cache was not cleared yet). */
export const restoredSinceStart = (dataDir: string): boolean => existsSync(join(dataDir, restoredMarker));

/**
 * A queue outside the data dir (QSTASH_URL) is not restored with it: unless its state comes from the same stop, what
 * it delivered after the backup is not delivered again, and what the restored outboxes send again is dropped as a
 * repeat; the saga's nudge (10 minutes, then longer) moves such orders on. Said at the first start (and at the next
 * ones while the marker stays, when clearing Redis failed).
 */
export const externalQueueWarning =
  "restored data dir on a queue outside it (QSTASH_URL): unless the broker's state was restored from the same stop as the backup (npm run broker's data dir or QSTASH_DB_SCHEMA), messages it delivered after the backup are not delivered again and those the outboxes send again are dropped as repeats, so orders in flight at the backup stay pending until their saga's nudge (10 minutes after they were placed, then longer); Upstash QStash cannot be restored (deploy/README.md, Backup and restore)";

export function markRestored(dataDir: string, archiveCreatedAt: string): void {
  const text = `${JSON.stringify({ restoredAt: new Date().toISOString(), archiveCreatedAt })}\n`;
  writeFileSync(join(dataDir, restoredMarker), text, { mode: 0o600 });
}

/**
 * The read cache's keys of one deployment: `<prefix>{<key>}` and `<prefix>{<key>}:floor`, where `prefix` is
 * `<REDIS_KEY_PREFIX>read:`. REDIS_KEY_PREFIX takes no `{` and no glob characters, so `<prefix>{*` matches no key of
 * another prefix, not even of one that starts with this one (its keys go on `read:{`, never straight on `{`).
 */
export const readCachePattern = (prefix: string) => `${prefix}{*`;

/** KEYS: none; ARGV: cursor, pattern, count. Touches no key, so no key needs declaring. */
const scanScript = "return redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])";
/** KEYS: keys of one hash slot that SCAN found, declared as a script must. */
const deleteScript = "local n = 0 for _, key in ipairs(KEYS) do n = n + redis.call('DEL', key) end return n";
/** Scripts in flight at once while a SCAN batch's keys go (each a round trip over REST). */
const deletesInFlight = 16;

/**
 * The part of a key Redis Cluster hashes to pick its slot: the text between the first `{` and the next `}`, when
 * that is not empty; else the whole key (the cluster specification's hash tags).
 */
export function hashTagOf(key: string): string {
  const open = key.indexOf("{");
  if (open < 0) return key;
  const close = key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/**
 * Keys grouped so that each group's keys share a hash slot: a value and its floor (`…{key}` and `…{key}:floor`)
 * together, two cache keys apart. A cluster refuses a script whose keys are of two slots (CROSSSLOT), and each cache
 * key is its own hash tag by design, so that its value and floor meet in one script wherever the key lives.
 */
export function bySlot(keys: readonly string[]): string[][] {
  const groups = new Map<string, string[]>();
  for (const key of keys) {
    const tag = hashTagOf(key);
    const group = groups.get(tag);
    if (group) group.push(key);
    else groups.set(tag, [key]);
  }
  return [...groups.values()];
}

const asText = (reply: unknown): string =>
  reply instanceof Uint8Array ? new TextDecoder().decode(reply) : String(reply);

/**
 * Bounds a start-time Redis call. The RatelimitRedis port takes no AbortSignal, so the call itself is not cut off: a
 * late answer is ignored, and the start goes on (warning) rather than waiting on a Redis that does not answer.
 */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Deletes every key matching `pattern`, SCAN batch by batch, one script per hash slot of the batch (a cluster, even of
 * one shard, refuses a script over two: CROSSSLOT); returns how many were deleted. On a cluster of several shards,
 * SCAN in a script sees only the node that runs it; the TCP clients talk to REDIS_URL's node and follow no MOVED, for
 * this as for every other command.
 */
export async function deleteMatching(
  redis: RatelimitRedis,
  pattern: string,
  timeoutMs: number,
): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const reply = await withDeadline(redis.eval(scanScript, [], [cursor, pattern, "500"]), timeoutMs);
    if (!Array.isArray(reply) || !Array.isArray(reply[1]))
      throw new Error("SCAN answered no cursor and keys");
    cursor = asText(reply[0]);
    const groups = bySlot((reply[1] as unknown[]).map(asText));
    for (let at = 0; at < groups.length; at += deletesInFlight) {
      const counts = await Promise.all(
        groups
          .slice(at, at + deletesInFlight)
          .map((keys) => withDeadline(redis.eval(deleteScript, keys, []), timeoutMs)),
      );
      for (const count of counts) deleted += Number(count);
    }
  } while (cursor !== "0");
  return deleted;
}

export interface AfterRestoreOptions {
  dataDir: string;
  /** The node's Redis (REDIS_URL or Upstash REST), if its config names one. */
  redis: RatelimitRedis | undefined;
  /** The read cache's key prefix, `<REDIS_KEY_PREFIX>read:`. */
  prefix: string;
  logger: Logger;
  /** How long one Redis call may take. Default 5000 ms. */
  timeoutMs?: number;
}

/**
 * On the first start after a restore, before the node serves: deletes this deployment's read-cache keys in Redis and
 * then the marker. If Redis fails, the node starts all the same (reads fall through to the actors while Redis is
 * away), warns with the command that does the same by hand, and keeps the marker, so its next start tries again.
 * Without Redis the cache is in the node's memory, empty at start: the marker is removed.
 */
export async function clearReadCacheAfterRestore(options: AfterRestoreOptions): Promise<void> {
  const marker = join(options.dataDir, restoredMarker);
  if (!existsSync(marker)) return;
  const { redis, logger } = options;
  const pattern = readCachePattern(options.prefix);
  if (redis) {
    try {
      const deleted = await deleteMatching(redis, pattern, options.timeoutMs ?? 5_000);
      logger.info(`restored data dir: cleared the read cache's keys in Redis (${pattern})`, { deleted });
    } catch (error) {
      logger.warn(
        `restored data dir: clearing the read cache's keys in Redis (${pattern}) failed; until they are gone, reads may answer state newer than the restore for up to 60 s, and fills of those keys are refused for up to an hour. The next start tries again, or delete them by hand: redis-cli -u <REDIS_URL> --scan --pattern '${pattern}' | xargs -r -d '\\n' redis-cli -u <REDIS_URL> del`,
        { error: errorFields(error) },
      );
      return;
    }
  }
  rmSync(marker, { force: true });
}
