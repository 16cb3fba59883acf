// Security suite, jwt: the JWT attack table (forgeries, key and header tricks, claims), one request per row.
import { afterAll, expect, test } from "bun:test";
import { claimRows } from "./jwt-claims.ts";
import { attackerJwks, forgeryRows } from "./jwt-forgery.ts";
import { runAttackTables } from "./jwt-table.ts";

runAttackTables({
  "JWT forgeries against GET /orders": forgeryRows,
  "JWT claims against GET /orders": claimRows,
});
afterAll(() => attackerJwks.stop());

test("the attacker's jku/x5u server was never asked for keys", () => {
  expect(attackerJwks.hits).toBe(0);
});
