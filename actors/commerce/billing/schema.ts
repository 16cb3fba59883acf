// The billing ledger's Postgres schema (billing_* tables), applied once per version of it (shared/postgres).
import type postgres from "postgres";
import {
  ensureSchema,
  type SchemaComponent,
  type SchemaMarkers,
} from "../../../shared/postgres/schema-marker.ts";

/**
 * The caller's pool (postgres.js), never opened here. Custom types do not matter: billing reads every int8
 * and numeric through Number(), and writes JSON as text.
 */
export type BillingSql = postgres.Sql;
/** A transaction on that pool. */
export type BillingTx = postgres.TransactionSql;

/** The accounts on the other side of every customer entry. They may go negative; customers may not. */
export const SystemAccounts = {
  /** Money put into customer accounts by `PUT /v1/accounts` (a balance set lower takes it back). */
  funding: "system:funding",
  /** Money captured from customers, less refunds. */
  revenue: "system:revenue",
} as const;

const ddl = `
  CREATE TABLE IF NOT EXISTS billing_accounts (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('customer', 'system')),
    balance_cents numeric NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT billing_accounts_customer_not_negative CHECK (kind <> 'customer' OR balance_cents >= 0)
  );
  -- Version 1 made balance_cents a bigint. The system accounts sum every customer's funding and captures with no
  -- bound: once about 1,024 customers had been given the largest balance, system:funding reached bigint's range
  -- and every later PUT that funds an account failed (22003). numeric holds any sum; customer balances stay within
  -- Number.MAX_SAFE_INTEGER (journal.ts). Checked in the catalog first, so only a table still on bigint is altered.
  DO $numeric_balance$ BEGIN
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = 'billing_accounts'::regclass
        AND attname = 'balance_cents' AND NOT attisdropped) = 'bigint'::regtype THEN
      ALTER TABLE billing_accounts ALTER COLUMN balance_cents TYPE numeric;
    END IF;
  END $numeric_balance$;
  INSERT INTO billing_accounts (id, kind) VALUES ('${SystemAccounts.funding}', 'system'),
    ('${SystemAccounts.revenue}', 'system') ON CONFLICT (id) DO NOTHING;

  CREATE TABLE IF NOT EXISTS billing_transactions (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('funding', 'capture', 'refund')),
    order_id text,
    customer_id text NOT NULL REFERENCES billing_accounts (id),
    message_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'funding') = (order_id IS NULL))
  );
  CREATE UNIQUE INDEX IF NOT EXISTS billing_transactions_once_per_order
    ON billing_transactions (order_id, kind) WHERE kind IN ('capture', 'refund');
  CREATE INDEX IF NOT EXISTS billing_transactions_customer ON billing_transactions (customer_id, created_at);

  CREATE TABLE IF NOT EXISTS billing_entries (
    transaction_id text NOT NULL REFERENCES billing_transactions (id),
    account_id text NOT NULL REFERENCES billing_accounts (id),
    amount_cents bigint NOT NULL,
    PRIMARY KEY (transaction_id, account_id)
  );
  CREATE INDEX IF NOT EXISTS billing_entries_account ON billing_entries (account_id);

  CREATE OR REPLACE FUNCTION billing_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE total numeric;
  BEGIN
    EXECUTE format('SELECT coalesce(sum(amount_cents), 0) FROM %I.%I WHERE transaction_id = $1',
      TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO total USING NEW.transaction_id;
    IF total <> 0 THEN
      RAISE EXCEPTION 'billing transaction % is unbalanced: its entries sum to %', NEW.transaction_id, total
        USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
  END $$;
  DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
        WHERE tgname = 'billing_entries_balanced' AND tgrelid = 'billing_entries'::regclass) THEN
      CREATE CONSTRAINT TRIGGER billing_entries_balanced AFTER INSERT OR UPDATE ON billing_entries
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION billing_entries_balanced();
    END IF;
  END $$;

  CREATE TABLE IF NOT EXISTS billing_processed_messages (
    message_id text NOT NULL,
    target text NOT NULL,
    type text NOT NULL,
    reply jsonb,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, target)
  );
  CREATE INDEX IF NOT EXISTS billing_processed_messages_at ON billing_processed_messages (processed_at);

  CREATE TABLE IF NOT EXISTS billing_outbox (
    seq bigserial PRIMARY KEY,
    envelope jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    attempts int NOT NULL DEFAULT 0,
    last_error text
  );
`;

export const billingSchema: SchemaComponent = { name: "billing", version: 2, lock: 8245641, ddl };

/**
 * Creates the billing tables, the balance trigger and the system accounts if missing; safe on every start and
 * from several nodes at once, and without DDL when the marker says this version is applied. Everything lands in
 * the first schema of the pool's `search_path`.
 */
export function migrateBilling(sql: BillingSql, markers?: SchemaMarkers): Promise<void> {
  return ensureSchema(sql, billingSchema, markers);
}
