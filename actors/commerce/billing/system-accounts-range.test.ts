// The system accounts sum every funding and capture: past bigint's range they still take each one (a real Postgres).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ledgerInvariants, SystemAccounts } from "./index.ts";
import { type BillingTestDatabase, billingTestDatabase, paymentRequested } from "./testing.ts";

let db: BillingTestDatabase;

beforeAll(async () => {
  db = await billingTestDatabase("range");
});

afterAll(() => db?.drop());

const most = Number.MAX_SAFE_INTEGER;
const systemBalance = async (id: string) =>
  BigInt(
    (await db.sql`SELECT balance_cents::text AS b FROM billing_accounts WHERE id = ${id}`)[0]?.b as string,
  );

test("a table version 1 made (balance_cents a bigint) is widened by the migration, its balances kept", async () => {
  await db.ledger.putAccount("minnow", 500);
  await db.sql`ALTER TABLE billing_accounts ALTER COLUMN balance_cents TYPE bigint`;
  await db.sql`DELETE FROM edgewise_schema WHERE component = 'billing'`;
  await db.ledger.migrate();
  const [column] = await db.sql`
    SELECT data_type FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'billing_accounts' AND column_name = 'balance_cents'`;
  expect(column?.data_type).toBe("numeric");
  expect((await db.ledger.getAccount("minnow")).balanceCents).toBe(500);
  expect((await ledgerInvariants(db.sql)).violations).toEqual([]);
});

test("1,026 customers each given the largest balance, and spending it: each PUT and capture applies", async () => {
  // 1,024 of them bring system:funding to -1,024 × MAX_SAFE_INTEGER (less the other test's 500 cents), next to
  // bigint's smallest value, and system:revenue as far above zero. Before, the next PUT failed there (22003,
  // answered 503 `unavailable` on every retry), and so would every later PUT that funds an account.
  for (let n = 1; n <= 1_026; n++) {
    await db.ledger.putAccount(`whale-${n}`, most);
    const outcome = await db.ledger.receive(paymentRequested(`whale-${n}`, `o-${n}`, most));
    expect((outcome.reply as { type: string }).type).toBe("PaymentCaptured");
  }
  expect(await systemBalance(SystemAccounts.revenue)).toBe(1_026n * BigInt(most));
  // The other test's minnow put 500 cents in first.
  expect(await systemBalance(SystemAccounts.funding)).toBe(-1_026n * BigInt(most) - 500n);
  expect((await db.ledger.getAccount("whale-1026")).balanceCents).toBe(0);
  expect((await ledgerInvariants(db.sql)).violations).toEqual([]);
}, 120_000);
