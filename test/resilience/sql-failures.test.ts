// The Postgres breaker's failure rule against the real Postgres: a refused statement counts as an answer, an outage as a failure.
import { afterAll, expect, test } from "bun:test";
import postgres from "postgres";
import { EdgewiseError } from "../../shared/errors/index.ts";
import {
  asPostgresFailure,
  Dependencies,
  isBreakerOpen,
  sqlIsFailure,
} from "../../shared/resilience/index.ts";
import { lostPostgresConnection } from "../../shared/resilience/sql-failures.ts";
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

test("a lost or refused connection is the driver's, told apart from the server's answers and from bugs", async () => {
  const down = postgres("postgres://postgres@127.0.0.1:1/test", { max: 1, connect_timeout: 1 });
  const refused = await errorOf(() => down`SELECT 1`);
  await down.end({ timeout: 0 });
  expect(lostPostgresConnection(refused)).toBe(true);
  const answered = await errorOf(() => sql`SELECT 1/0`); // 22012: the server answered
  expect(lostPostgresConnection(answered)).toBe(false);
  expect(lostPostgresConnection(new TypeError("x is undefined"))).toBe(false);
  expect(lostPostgresConnection(Object.assign(new Error("no such file"), { code: "ENOENT" }))).toBe(false);
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

/** Two more sessions, for a lock one holds while the other waits. */
async function twoSessions<T>(use: (a: postgres.Sql, b: postgres.Sql) => Promise<T>): Promise<T> {
  const a = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  const b = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    return await use(a, b);
  } finally {
    await Promise.all([a.end({ timeout: 1 }), b.end({ timeout: 1 })]);
  }
}

/** Real refusals of "not now": a wait past lock_timeout (55P03), a deadlock the server broke (40P01), and a 40001. */
async function transientRefusals(): Promise<unknown[]> {
  const key = Math.floor(Math.random() * 2 ** 30);
  const lockTimeout = await twoSessions(async (a, b) => {
    let taken!: () => void;
    const held = new Promise<void>((resolve) => {
      taken = resolve;
    });
    const holding = a.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${key})`;
      taken();
      await Bun.sleep(500);
    });
    await held;
    const error = await errorOf(() =>
      b.begin(async (tx) => {
        await tx`SET LOCAL lock_timeout = 50`;
        await tx`SELECT pg_advisory_xact_lock(${key})`;
      }),
    );
    await holding;
    return error;
  });
  const deadlock = await twoSessions(async (a, b) => {
    let aHas!: () => void;
    let bHas!: () => void;
    const aHolds = new Promise<void>((resolve) => {
      aHas = resolve;
    });
    const bHolds = new Promise<void>((resolve) => {
      bHas = resolve;
    });
    // Each takes one lock, then waits for the other's: the server ends one side (after deadlock_timeout, 1 s).
    const sides = [
      a.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${key})`;
        aHas();
        await bHolds;
        await tx`SELECT pg_advisory_xact_lock(${key + 1})`;
      }),
      b.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${key + 1})`;
        bHas();
        await aHolds;
        await tx`SELECT pg_advisory_xact_lock(${key})`;
      }),
    ];
    const settled = await Promise.allSettled(sides);
    const refused = settled.filter((side) => side.status === "rejected");
    expect(refused).toHaveLength(1);
    return (refused[0] as PromiseRejectedResult).reason;
  });
  return [lockTimeout, deadlock, await raised("40001")];
}

test("a lock wait past lock_timeout, a deadlock, a serialization failure: 503 unavailable with Retry-After, not a breaker failure", async () => {
  const refusals = await transientRefusals();
  expect(refusals.map((error) => (error as { code?: unknown }).code)).toEqual(["55P03", "40P01", "40001"]);
  for (const error of refusals) {
    expect(sqlIsFailure(error)).toBe(false);
    const seen = asPostgresFailure(error);
    expect(seen).toBeInstanceOf(EdgewiseError);
    expect(seen).toMatchObject({ code: "unavailable", status: 503, meta: { retryAfterSeconds: 1 } });
    expect((seen as EdgewiseError).cause).toBe(error);
    // The billing ledger's own `unavailable` around one (any database error is one there) is judged by what it wraps.
    const wrapped = new EdgewiseError("unavailable", "the billing ledger is unavailable; retry", {
      cause: error,
    });
    expect(sqlIsFailure(wrapped)).toBe(false);
    expect(asPostgresFailure(wrapped)).toMatchObject({
      code: "unavailable",
      message: "the billing ledger is unavailable; retry",
      meta: { retryAfterSeconds: 1 },
    });
  }
  // An outage the ledger wraps still counts, and keeps its answer, with the outage's Retry-After of one second.
  const outage = await raised("08006");
  const wrappedOutage = new EdgewiseError("unavailable", "the billing ledger is unavailable; retry", {
    cause: outage,
  });
  expect(sqlIsFailure(wrappedOutage)).toBe(true);
  expect(asPostgresFailure(wrappedOutage)).toMatchObject({
    code: "unavailable",
    message: "the billing ledger is unavailable; retry",
    meta: { retryAfterSeconds: 1 },
  });
  // And an outage answers 503 with it too (test/resilience/postgres-outage-retry-after.test.ts, on a node).
  expect(asPostgresFailure(outage)).toMatchObject({ code: "unavailable", meta: { retryAfterSeconds: 1 } });
}, 20_000);

test("a lock refused again and again, even wrapped as the billing ledger's unavailable, does not open the breaker", async () => {
  const [lockTimeout] = await transientRefusals();
  const dependencies = new Dependencies({ policies: { postgres: { breaker: { isFailure: sqlIsFailure } } } });
  for (let i = 0; i < 12; i++) {
    await errorOf(() =>
      dependencies.call("postgres", () =>
        Promise.reject(
          new EdgewiseError("unavailable", "the billing ledger is unavailable; retry", {
            cause: lockTimeout,
          }),
        ),
      ),
    );
  }
  const [row] = await dependencies.call("postgres", () => sql`SELECT 1 AS one`);
  expect(row).toEqual({ one: 1 });
}, 20_000);
