// Test support: a billing ledger in a schema of its own on the test Postgres, migrated, dropped after.
import { connect, type Sql } from "../../../deploy/local/broker/db.ts";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import { BillingLedger } from "./index.ts";

const base = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface BillingTestDatabase {
  sql: Sql;
  ledger: BillingLedger;
  drop(): Promise<void>;
}

/**
 * A migrated ledger in `billing_test_<name>_<pid>_<random>`. `settings`: session parameters every connection gets,
 * as a role's `ALTER ROLE … SET` gives them (e.g. `default_transaction_isolation: "serializable"`).
 */
export async function billingTestDatabase(
  name: string,
  options: { max?: number; settings?: Record<string, string> } = {},
): Promise<BillingTestDatabase> {
  const params = new URLSearchParams(options.settings ?? {}).toString();
  const url = params ? `${base}${base.includes("?") ? "&" : "?"}${params}` : base;
  const schema = `billing_test_${name}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const sql = await connect({ url, max: options.max ?? 4, schema });
  const ledger = new BillingLedger(sql);
  await ledger.migrate();
  return {
    sql,
    ledger,
    drop: async () => {
      await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
      await sql.end();
    },
  };
}

/** A PaymentRequested from order `orderId` for `customerId`'s billing, as the order's saga sends it. */
export const paymentRequested = (customerId: string, orderId: string, amountCents: number) =>
  createEnvelope({
    type: "PaymentRequested",
    source: `edgewise://actor/order/${orderId}`,
    target: `billing/${customerId}`,
    data: { orderId, customerId, amountCents },
  });
