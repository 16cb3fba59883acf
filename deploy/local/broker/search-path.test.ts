// The schema a DATABASE_URL asks for, read as Postgres reads a search_path.
import { expect, test } from "bun:test";
import { requestedSchema } from "./search-path.ts";

test("the first schema of search_path, from the option, the URL or libpq's options, as Postgres reads it", () => {
  const base = "postgres://u@h:5432/db";
  expect(requestedSchema(base)).toBeUndefined();
  expect(requestedSchema(base, "tenant_a")).toBe("tenant_a");
  expect(requestedSchema(`${base}?search_path=Tenant_B,public`)).toBe("tenant_b");
  expect(requestedSchema(`${base}?search_path=${encodeURIComponent('"Mixed Case", public')}`)).toBe(
    "Mixed Case",
  );
  expect(
    requestedSchema(`${base}?options=${encodeURIComponent("-c search_path=shop -c statement_timeout=5s")}`),
  ).toBe("shop");
  expect(requestedSchema(`${base}?options=${encodeURIComponent("--search_path=shop2")}`)).toBe("shop2");
  expect(requestedSchema(`${base}?search_path=${encodeURIComponent("$user, public")}`)).toBeUndefined();
});
