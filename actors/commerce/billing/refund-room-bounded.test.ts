// A balance raise reads one row, not the customer's capture history, unless it comes within revenue of the bound.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { EdgewiseError } from "../../../shared/errors/index.ts";
import { BillingLedger } from "./index.ts";
import { type BillingTestDatabase, billingTestDatabase } from "./testing.ts";

const base = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const captures = 2_000;
const most = Number.MAX_SAFE_INTEGER;

let db: BillingTestDatabase;
let probe: postgres.Sql;
let ledger: BillingLedger;
const statements: string[] = [];

beforeAll(async () => {
  db = await billingTestDatabase("refund_room_bounded");
  const [row] = await db.sql<{ schema: string }[]>`SELECT current_schema() AS schema`;
  probe = postgres(base, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: row?.schema as string },
    debug: (_connection, query) => void statements.push(query),
  });
  ledger = new BillingLedger(probe);
  await ledger.putAccount("heavy", 1_000_000);
  // A history of captures, none refunded, written as the journal writes them (balanced, balances moved).
  await db.sql.begin(async (tx) => {
    await tx`
      INSERT INTO billing_transactions (id, kind, order_id, customer_id)
      SELECT 'c-' || g, 'capture', 'o-' || g, 'heavy' FROM generate_series(1, ${captures}) g`;
    await tx`
      INSERT INTO billing_entries (transaction_id, account_id, amount_cents)
      SELECT 'c-' || g, a.id, a.amount FROM generate_series(1, ${captures}) g,
        (VALUES ('heavy', -100), ('system:revenue', 100)) AS a(id, amount)`;
    await tx`UPDATE billing_accounts SET balance_cents = balance_cents - ${captures * 100} WHERE id = 'heavy'`;
    await tx`UPDATE billing_accounts SET balance_cents = balance_cents + ${captures * 100} WHERE id = 'system:revenue'`;
  });
});
afterAll(async () => {
  await probe?.end();
  await db?.drop();
});

/** The statement that sums the customer's unrefunded captures (leaveRoomForRefunds' exact check). */
const historyScans = () => statements.filter((query) => query.includes("c.kind = 'capture'"));

test("a raise far from the bound reads no capture history, however long it is", async () => {
  statements.length = 0;
  expect((await ledger.putAccount("heavy", 5_000_000)).balanceCents).toBe(5_000_000);
  expect(historyScans()).toEqual([]);
});

test("a raise within revenue of the bound still sums the history, and refuses what a refund would overflow", async () => {
  statements.length = 0;
  const refused = await ledger
    .putAccount("heavy", most - captures * 100 + 1)
    .catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(EdgewiseError);
  expect((refused as EdgewiseError).code).toBe("conflict");
  expect((refused as EdgewiseError).message).toContain(`at most ${most - captures * 100}`);
  expect(historyScans()).toHaveLength(1);
  expect((await ledger.putAccount("heavy", most - captures * 100)).balanceCents).toBe(most - captures * 100);
});
