// The `orders_read` table: its DDL, and the mapping between its rows and OrderRecord.
import type postgres from "postgres";
import {
  ensureSchema,
  type SchemaComponent,
  type SchemaMarkers,
} from "../../../shared/postgres/schema-marker.ts";
import { addColumnIfMissing } from "../add-column.ts";
import type { OrderStatus, RejectReason } from "../messages.ts";
import { type OrderLineView, type OrderRecord, searchText } from "./order-merge.ts";

/**
 * `order_id` sorts bytewise (COLLATE "C"), so the keyset order is the same on every server. `search` is built
 * from `searchText` with the 'simple' configuration: no stemming and no stop words, ids stay as written
 * (lowercased). `skus` keeps the skus of orders whose lines are not known yet, for search.
 *
 * `ids` (the order id, the customer id and the skus, exactly as given) lets a search find an id as a whole, which
 * the text parser cannot always: it drops what has no letter or digit (a customer `😀🎉` or `%`, a sku `---`) and
 * splits some ids differently inside the document than alone (`~abc` is `abc` there and `~abc` in a query). Being
 * generated, it is filled for rows written before it too (Postgres computes it once, when the column is added).
 */
export const ordersReadSchema: SchemaComponent = {
  name: "orders_read",
  version: 4,
  lock: 8245611,
  ddl: `
      CREATE TABLE IF NOT EXISTS orders_read (
        order_id text COLLATE "C" PRIMARY KEY,
        customer_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
        items jsonb NOT NULL DEFAULT '[]',
        skus text[] NOT NULL DEFAULT '{}',
        total_cents bigint CHECK (total_cents >= 0),
        reason text,
        version bigint NOT NULL CHECK (version >= 1),
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        search tsvector NOT NULL
      );
      -- Version 3: rows written before the search text was NFC (f946ab1, 2026-12-07) keep a decomposed id's words as
      -- written, which a search's NFC words never match; their text is made again as searchText makes it. Only
      -- those rows are written, and first: the CREATE INDEXes below lock out writers until the commit, so the scan
      -- runs before them. normalize needs a UTF8 database, and any other holds no such row. A schema whose marker
      -- is at version 3 or later had its scan (reading every row: 8 s for 1,000,000 orders), and is not read again.
      DO $nfc_search$ BEGIN
        IF current_setting('server_encoding') = 'UTF8' AND NOT EXISTS (
          SELECT 1 FROM edgewise_schema WHERE component = 'orders_read' AND version >= 3
        ) THEN
          UPDATE orders_read SET search = to_tsvector('simple',
            normalize(array_to_string(ARRAY[order_id, customer_id] || skus || ARRAY[status], ' '), NFC))
          WHERE array_to_string(ARRAY[order_id, customer_id] || skus, ' ') IS NOT NFC NORMALIZED;
        END IF;
      END $nfc_search$;
      CREATE INDEX IF NOT EXISTS orders_read_recent ON orders_read (created_at DESC, order_id DESC);
      CREATE INDEX IF NOT EXISTS orders_read_customer
        ON orders_read (customer_id, created_at DESC, order_id DESC);
      CREATE INDEX IF NOT EXISTS orders_read_status ON orders_read (status, created_at DESC, order_id DESC);
      CREATE INDEX IF NOT EXISTS orders_read_search ON orders_read USING gin (search);
      ${addColumnIfMissing("orders_read", "ids", "text[] GENERATED ALWAYS AS (ARRAY[order_id, customer_id] || skus) STORED")}
      CREATE INDEX IF NOT EXISTS orders_read_ids ON orders_read USING gin (ids);
      ${addColumnIfMissing("orders_read", "refunded_at", "timestamptz")}
      -- Version 4: a customer's orders of one status, newest first, read by index alone. With orders_read_customer
      -- and a filter on status, a status the customer seldom has read all of that customer's orders.
      CREATE INDEX IF NOT EXISTS orders_read_customer_status
        ON orders_read (customer_id, status, created_at DESC, order_id DESC);
    `,
};

/** Creates the table and indexes if missing; without DDL when the marker says this version is applied. */
export function migrateOrdersRead<Types extends Record<string, unknown>>(
  sql: postgres.Sql<Types>,
  markers?: SchemaMarkers,
): Promise<void> {
  return ensureSchema(sql, ordersReadSchema, markers);
}

export interface OrderRow {
  order_id: string;
  customer_id: string;
  status: string;
  items: unknown;
  skus: unknown;
  /** int8 columns arrive as strings, or as numbers on a pool that parses them (deploy/local/broker/db.ts). */
  total_cents: string | number | null;
  reason: string | null;
  /** Null until OrderRefunded; also on a table made before the column, for its old rows. */
  refunded_at: Date | null;
  version: string | number;
  created_at: Date;
  updated_at: Date;
}

/** The select list `fromRow` expects; `skus` as jsonb, so no array type parsing is needed from the driver. */
export function orderColumns<Types extends Record<string, unknown>>(sql: postgres.ISql<Types>) {
  return sql`order_id, customer_id, status, items, to_jsonb(skus) AS skus, total_cents, reason, refunded_at,
    version, created_at, updated_at`;
}

export function fromRow(row: OrderRow): OrderRecord {
  return {
    orderId: row.order_id,
    customerId: row.customer_id,
    status: row.status as OrderStatus,
    items: row.items as OrderLineView[],
    skus: row.skus as string[],
    totalCents: row.total_cents === null ? null : Number(row.total_cents),
    reason: row.reason as RejectReason | null,
    refundedAt: row.refunded_at === null ? null : row.refunded_at.getTime(),
    version: Number(row.version),
    createdAt: row.created_at.getTime(),
    updatedAt: row.updated_at.getTime(),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));
const textArray = (values: readonly string[]) => JSON.stringify(values);

// JSON goes in as text, cast in SQL: a parameter Postgres describes as jsonb would be JSON-encoded again by the driver.

/** Inserts the record unless its order exists; true when inserted. */
export async function insertOrder<Types extends Record<string, unknown>>(
  sql: postgres.ISql<Types>,
  record: OrderRecord,
): Promise<boolean> {
  const rows = await sql`
    INSERT INTO orders_read (order_id, customer_id, status, items, skus, total_cents, reason, refunded_at, version,
      created_at, updated_at, search)
    VALUES (${record.orderId}, ${record.customerId}, ${record.status}, ${JSON.stringify(record.items)}::text::jsonb,
      ARRAY(SELECT jsonb_array_elements_text(${textArray(record.skus)}::text::jsonb)), ${record.totalCents},
      ${record.reason}, ${isoOrNull(record.refundedAt)}::timestamptz, ${record.version}, ${iso(record.createdAt)}::timestamptz,
      ${iso(record.updatedAt)}::timestamptz, to_tsvector('simple', ${searchText(record)}))
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id`;
  return rows.length > 0;
}

export async function updateOrder<Types extends Record<string, unknown>>(
  sql: postgres.ISql<Types>,
  record: OrderRecord,
): Promise<void> {
  await sql`
    UPDATE orders_read SET
      customer_id = ${record.customerId},
      status = ${record.status},
      items = ${JSON.stringify(record.items)}::text::jsonb,
      skus = ARRAY(SELECT jsonb_array_elements_text(${textArray(record.skus)}::text::jsonb)),
      total_cents = ${record.totalCents},
      reason = ${record.reason},
      refunded_at = ${isoOrNull(record.refundedAt)}::timestamptz,
      version = ${record.version},
      created_at = ${iso(record.createdAt)}::timestamptz,
      updated_at = ${iso(record.updatedAt)}::timestamptz,
      search = to_tsvector('simple', ${searchText(record)})
    WHERE order_id = ${record.orderId}`;
}
