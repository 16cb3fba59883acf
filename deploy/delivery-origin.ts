// Follows a node's own address: the embedded broker's messages for it move when it restarts on another one.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Sql } from "./local/broker/db.ts";

export interface MovedDeliveries {
  from: string;
  messages: number;
  deadLetters: number;
}

/**
 * A message names the URL it goes to, written when it was sent: `<origin>/_edgewise/deliver/…` of this node. After
 * a restart on another port or PUBLIC_URL, those still waiting (a retry, a delay) would go to the old address,
 * fail there until their retries ran out, and end in the dead letters, as would a replay of those already there.
 * The origin last used is kept in the data dir; when it changed, the broker's messages and dead letters for it
 * move to the new one (their signatures are made at delivery, for the URL they then have). Other URLs (another
 * actor host, a webhook receiver) are left as they are. Undefined when nothing moved.
 */
export async function followDeliveryOrigin(
  sql: Sql,
  dataDir: string,
  origin: string,
): Promise<MovedDeliveries | undefined> {
  const file = join(dataDir, "delivery-origin");
  const previous = existsSync(file) ? readFileSync(file, "utf8").trim() : "";
  let moved: MovedDeliveries | undefined;
  if (previous !== "" && previous !== origin) {
    const prefix = `${previous}/_edgewise/deliver/`;
    const rest = previous.length + 1;
    const [row] = await sql<Array<{ messages: number; dead: number }>>`
      WITH m AS (
        UPDATE qstash_messages SET url = ${origin} || substr(url, ${rest}) WHERE starts_with(url, ${prefix})
        RETURNING 1
      ), d AS (
        UPDATE qstash_dlq SET url = ${origin} || substr(url, ${rest}) WHERE starts_with(url, ${prefix})
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM m)::int AS messages, (SELECT count(*) FROM d)::int AS dead`;
    moved = { from: previous, messages: row?.messages ?? 0, deadLetters: row?.dead ?? 0 };
  }
  // Written once the move committed: a crash in between finds nothing left to move at the next start.
  writeFileSync(file, `${origin}\n`, { mode: 0o600 });
  return moved && moved.messages + moved.deadLetters > 0 ? moved : undefined;
}
