// The system accounts sum every funding and capture: past bigint's range they still take each one (a real Postgres).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Sql } from "../../../deploy/local/broker/db.ts";
import { createEnvelope } from "../../../shared/envelope/index.ts";
import { BillingLedger, ledgerInvariants, SystemAccounts } from "./index.ts";

const url = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `billing_test_range_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
let sql: Sql;
let ledger: BillingLedger;

beforeAll(async () => {
  sql = await connect({ url, max: 4, schema });
  ledger = new BillingLedger(sql);
  await ledger.migrate();
});

afterAll(async () => {
  await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
  await sql.end();
});

const most = Number.MAX_SAFE_INTEGER;
const payment = (customerId: string, orderId: string, amountCents: number) =>
  createEnvelope({
    type: "PaymentRequested",
    source: `edgewise://actor/order/${orderId}`,
    target: `billing/${customerId}`,
    data: { orderId, customerId, amountCents },
  });
const systemBalance = async (id: string) =>
  BigInt((await sql`SELECT balance_cents::text AS b FROM billing_accounts WHERE id = ${id}`)[0]?.b as string);

test("a table version 1 made (balance_cents a bigint) is widened by the migration, its balances kept", async () => {
  await ledger.putAccount("minnow", 500);
  await sql`ALTER TABLE billing_accounts ALTER COLUMN balance_cents TYPE bigint`;
  await sql`DELETE FROM edgewise_schema WHERE component = 'billing'`;
  await ledger.migrate();
  const [column] = await sql`
    SELECT data_type FROM information_schema.columns
    WHERE table_schema = ${schema} AND table_name = 'billing_accounts' AND column_name = 'balance_cents'`;
  expect(column?.data_type).toBe("numeric");
  expect((await ledger.getAccount("minnow")).balanceCents).toBe(500);
  expect((await ledgerInvariants(sql)).violations).toEqual([]);
});

test("1,026 customers each given the largest balance, and spending it: each PUT and capture applies", async () => {
  // 1,024 of them bring system:funding to -1,024 × MAX_SAFE_INTEGER (less the other test's 500 cents), next to
  // bigint's smallest value, and system:revenue as far above zero. Before, the next PUT failed there (22003,
  // answered 503 `unavailable` on every retry), and so would every later PUT that funds an account.
  for (let n = 1; n <= 1_026; n++) {
    await ledger.putAccount(`whale-${n}`, most);
    const outcome = await ledger.receive(payment(`whale-${n}`, `o-${n}`, most));
    expect((outcome.reply as { type: string }).type).toBe("PaymentCaptured");
  }
  expect(await systemBalance(SystemAccounts.revenue)).toBe(1_026n * BigInt(most));
  // The other test's minnow put 500 cents in first.
  expect(await systemBalance(SystemAccounts.funding)).toBe(-1_026n * BigInt(most) - 500n);
  expect((await ledger.getAccount("whale-1026")).balanceCents).toBe(0);
  expect((await ledgerInvariants(sql)).violations).toEqual([]);
}, 120_000);
