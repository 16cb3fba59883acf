// The Postgres breaker's failure rule against the real Postgres: a refused statement counts as an answer, an outage as a failure.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { Dependencies, isBreakerOpen, sqlIsFailure } from "../../shared/resilience/index.ts";
import { TEST_DATABASE_URL } from "../broker/helpers.ts";

const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
afterAll(() => sql.end({ timeout: 1 }));

const errorOf = (query: () => Promise<unknown>) =>
  query().then(
    () => {
      throw new Error("the query succeeded");
    },
    (error: unknown) => error,
  );

test("values out of range, a constraint, a bad statement: the database answered; a refused connection failed", async () => {
  const refused = [
    await errorOf(() => sql`SELECT '0000-01-01T00:00:00Z'::timestamptz`), // 22008
    await errorOf(() => sql`SELECT '9223372036854775808'::int8`), // 22003
    await errorOf(() => sql`SELECT 1/0`), // 22012
    await errorOf(() => sql`SELECT no_such_column FROM pg_class`), // 42703
  ];
  for (const error of refused) expect(sqlIsFailure(error)).toBe(false);
  const down = postgres("postgres://postgres@127.0.0.1:1/test", { max: 1, connect_timeout: 1 });
  const outage = await errorOf(() => down`SELECT 1`);
  await down.end({ timeout: 0 });
  expect(sqlIsFailure(outage)).toBe(true);
  expect(sqlIsFailure(new Error("timeout"))).toBe(true);
});

test("a caller sending bad values again and again does not open the Postgres breaker for everyone", async () => {
  const dependencies = new Dependencies({ policies: { postgres: { breaker: { isFailure: sqlIsFailure } } } });
  for (let i = 0; i < 12; i++)
    await errorOf(() => dependencies.call("postgres", () => sql`SELECT '0000-01-01T00:00:00Z'::timestamptz`));
  const [row] = await dependencies.call("postgres", () => sql`SELECT 1 AS one`);
  expect(row).toEqual({ one: 1 });
  // The default rule would have opened it: the same errors count there.
  const strict = new Dependencies();
  for (let i = 0; i < 6; i++)
    await errorOf(() => strict.call("postgres", () => sql`SELECT '0000-01-01T00:00:00Z'::timestamptz`));
  expect(isBreakerOpen(await errorOf(() => strict.call("postgres", () => sql`SELECT 1`)))).toBe(true);
});
