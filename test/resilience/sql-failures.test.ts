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

/** A real error the server sends with SQLSTATE `code`, as a trigger or function raising it would. */
const raised = (code: string) =>
  errorOf(() =>
    sql.unsafe(`DO $$ BEGIN RAISE EXCEPTION 'raised (a test)' USING ERRCODE = '${code}'; END $$`),
  );

test("any other statement the server refuses proves it up: a trigger's refusal or bug, a lock, a limit, a permission", async () => {
  await sql.unsafe("CREATE FUNCTION pg_temp.no_return() RETURNS int LANGUAGE plpgsql AS $$ BEGIN END $$");
  const answered = [
    await errorOf(() => sql.unsafe("DO $$ BEGIN RAISE EXCEPTION 'refused (a test)'; END $$")), // P0001
    await errorOf(() => sql`SELECT pg_temp.no_return()`), // 2F005: a function (a trigger's) with no RETURN
    ...(await Promise.all(
      [
        "09000", // triggered action exception
        "38000", // external routine exception
        "39000", // external routine invocation
        "42501", // insufficient privilege
        "55P03", // lock not available (lock_timeout, NOWAIT)
        "54000", // program limit exceeded
        "0A000", // feature not supported
        "25P02", // in a failed transaction
        "40001", // serialization failure
        "23505", // a unique key
      ].map(raised),
    )),
  ];
  for (const error of answered) {
    expect((error as { severity?: unknown }).severity).toBe("ERROR");
    expect({ code: (error as { code?: unknown }).code, failure: sqlIsFailure(error) }).toMatchObject({
      failure: false,
    });
  }
});

test("the server saying it cannot serve counts, and so does a driver's error whatever its code looks like", async () => {
  const timedOut = await errorOf(() =>
    sql.begin(async (tx) => {
      await tx`SET LOCAL statement_timeout = 50`;
      await tx`SELECT pg_sleep(1)`;
    }),
  );
  expect((timedOut as { code?: unknown }).code).toBe("57014");
  const unavailable = [
    timedOut,
    ...(await Promise.all(
      ["08006", "28P01", "3D000", "53100", "53300", "57P01", "58030", "F0000", "XX001", "25006"].map(raised),
    )),
  ];
  for (const error of unavailable) {
    expect({ code: (error as { code?: unknown }).code, failure: sqlIsFailure(error) }).toMatchObject({
      failure: true,
    });
  }
  // Not sent by the server (no severity): a socket's errno that is five capitals, a driver's own code.
  expect(sqlIsFailure(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }))).toBe(true);
  expect(sqlIsFailure(Object.assign(new Error("closed"), { code: "CONNECTION_CLOSED" }))).toBe(true);
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
