// Reading the orders read model: one order, or a filtered, searched page, newest first, with a keyset cursor.
import type postgres from "postgres";
import * as v from "valibot";
import { validationError } from "../../../shared/errors/valibot.ts";
import { CustomerId, OrderId, OrderStatus } from "../messages.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { type OrderView, toOrderView } from "./order-merge.ts";
import { fromRow, type OrderRow, orderColumns } from "./orders-table.ts";
import { type Page, PageLimit } from "./page-limit.ts";

/** GET /v1/orders query parameters. `customerId` is also how the caller enforces object-level authorization. */
export const ListOrdersQuery = v.object({
  customerId: v.optional(CustomerId),
  status: v.optional(OrderStatus),
  /** Words, all of which must match: an order id, a customer id, a sku or a status, or a part of one. */
  q: v.optional(v.pipe(v.string(), v.maxLength(200))),
  limit: PageLimit,
  cursor: v.optional(v.string()),
});
export type ListOrdersQuery = v.InferInput<typeof ListOrdersQuery>;

/** The last row of a page: its createdAt (ISO, millisecond precision as written) and order id. */
/** A timestamp Postgres can compare with: a cursor's comes from a row, so anything before 1970 or after 9999 is forged. */
const cursorTime = v.pipe(
  v.string(),
  v.isoTimestamp(),
  v.check((t) => {
    const year = new Date(t).getUTCFullYear();
    return year >= 1970 && year <= 9999;
  }),
);
const OrdersCursor = v.strictObject({ t: cursorTime, id: OrderId });

/** Only a word with a letter or a digit can match the text parser's lexemes (the rest it drops). */
const hasLexeme = (word: string) => /[\p{L}\p{N}]/u.test(word);

/**
 * The words of `q`, at most 8, those the text parser can match first. A word with no letter or digit is matched
 * by id alone, a clause of another shape; in the order given, 8 words made 256 statements, and each distinct one is
 * prepared and kept on every connection that runs it (about 20 KB each on PGlite), so anyone who may search could
 * grow the embedded Postgres by tens of MB. Sorted, the shapes are at most 9 per word count; AND does not care.
 */
function searchWords(q: string): string[] {
  return q
    .split(/\s+/)
    .filter((word) => word !== "")
    .slice(0, 8)
    .sort((a, b) => Number(hasLexeme(b)) - Number(hasLexeme(a)));
}

export async function getOrder<Types extends Record<string, unknown>>(
  sql: postgres.Sql<Types>,
  orderId: string,
): Promise<OrderView | undefined> {
  const [row] = await sql<OrderRow[]>`
    SELECT ${orderColumns(sql)} FROM orders_read WHERE order_id = ${orderId}`;
  return row ? toOrderView(fromRow(row)) : undefined;
}

/**
 * How many orders a search reads newest first, per row of its page, before it reads its matches by index instead:
 * a page of a word in every 250th order (of those the filters keep) is found within them.
 */
const searchWindowPerRow = 250;

/**
 * The newest `wanted` orders that pass `filters` and `search`, newest first, read in one statement that is bounded
 * whatever the planner thinks of the words. It reads the newest `wanted * 250` orders that pass `filters` and
 * keeps those that match: when that fills the page, no older order can belong on it. Otherwise it reads every match
 * by the text and id indexes (a MATERIALIZED CTE, planned alone, with no LIMIT to tempt the planner into a walk) and
 * sorts them. A walk of the orders newest first until a page is full, which the planner chose for a word it thought
 * common, read the whole table when the word's orders were old (1.3 s for 5,000 of 1,000,000).
 */
async function searchPage<Types extends Record<string, unknown>>(
  sql: postgres.Sql<Types>,
  filters: postgres.PendingQuery<postgres.Row[]>,
  search: postgres.PendingQuery<postgres.Row[]>,
  wanted: number,
): Promise<OrderRow[]> {
  return await sql<OrderRow[]>`
    WITH recent AS (
      SELECT order_id, created_at FROM (
        SELECT order_id, created_at, search, ids FROM orders_read
        WHERE TRUE ${filters}
        ORDER BY created_at DESC, order_id DESC
        LIMIT ${wanted * searchWindowPerRow}
      ) AS orders_read
      WHERE TRUE ${search}
      ORDER BY created_at DESC, order_id DESC
      LIMIT ${wanted}
    ), matches AS MATERIALIZED (
      SELECT order_id, created_at FROM orders_read WHERE TRUE ${filters} ${search}
    ), page AS (
      SELECT order_id FROM recent WHERE (SELECT count(*) FROM recent) >= ${wanted}
      UNION ALL
      (SELECT order_id FROM matches WHERE (SELECT count(*) FROM recent) < ${wanted}
       ORDER BY created_at DESC, order_id DESC
       LIMIT ${wanted})
    )
    SELECT ${orderColumns(sql)} FROM orders_read
    WHERE order_id IN (SELECT order_id FROM page)
    ORDER BY created_at DESC, order_id DESC`;
}

/**
 * Each word of `q` is a phrase query (`phraseto_tsquery('simple', word)`) and all must match: `SKU-123` matches
 * the sku `SKU-123` and not an order holding both `SKU-9` and `ABC-123`, which `plainto_tsquery` would accept.
 * A word also matches an order, customer or sku id equal to it, and `q` as a whole does too (a customer `a b`):
 * every id the API takes is found by itself, even one the parser drops (`😀🎉`, `---`) or splits (`~abc`). Words
 * are compared in Unicode's composed form (NFC), as the search text is stored; the exact match takes `q` as given.
 * A `q` of only white space searches nothing, as if left out.
 */
export async function listOrders<Types extends Record<string, unknown>>(
  sql: postgres.Sql<Types>,
  input: ListOrdersQuery,
): Promise<Page<OrderView>> {
  const parsed = v.safeParse(ListOrdersQuery, input);
  if (!parsed.success) throw validationError("request.invalid", "order query", parsed.issues);
  const { customerId, status, q, limit, cursor } = parsed.output;
  const after = cursor === undefined ? undefined : decodeCursor(cursor, OrdersCursor);
  const words = q === undefined ? [] : searchWords(q);

  const none = sql``;
  // One word: an id equal to it, or (if the parser keeps any of it) its phrase in the search text.
  const wordMatches = (word: string) =>
    hasLexeme(word)
      ? sql`(ids @> ARRAY[${word}]::text[] OR search @@ phraseto_tsquery('simple', ${word.normalize("NFC")}))`
      : sql`ids @> ARRAY[${word}]::text[]`;
  const allWords = words
    .slice(1)
    .reduce((all, word) => sql`${all} AND ${wordMatches(word)}`, words[0] ? wordMatches(words[0]) : none);
  const search =
    q === undefined || words.length === 0
      ? none
      : words.length === 1 && words[0] === q
        ? sql`AND ${allWords}`
        : sql`AND (ids @> ARRAY[${q}]::text[] OR (${allWords}))`;
  const filters = sql`
      ${customerId === undefined ? none : sql`AND customer_id = ${customerId}`}
      ${status === undefined ? none : sql`AND status = ${status}`}
      ${after === undefined ? none : sql`AND (created_at, order_id) < (${after.t}::timestamptz, ${after.id})`}`;
  const rows =
    search === none
      ? await sql<OrderRow[]>`
    SELECT ${orderColumns(sql)} FROM orders_read
    WHERE TRUE ${filters}
    ORDER BY created_at DESC, order_id DESC
    LIMIT ${limit + 1}`
      : await searchPage(sql, filters, search, limit + 1);
  const page = rows.slice(0, limit).map(fromRow);
  const last = page.at(-1);
  return {
    items: page.map(toOrderView),
    nextCursor:
      rows.length > limit && last
        ? encodeCursor({ t: new Date(last.createdAt).toISOString(), id: last.orderId })
        : null,
  };
}
