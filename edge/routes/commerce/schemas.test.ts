// The commerce request schemas: no control characters in free text (Postgres would 500), no dot-segment ids.
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { ListActivityQuery, ListOrdersQuery, PlaceOrderBody, SkuParam } from "./schemas.ts";

describe("free-text query parameters", () => {
  test("q, subject and type take words and punctuation, but no control characters", () => {
    expect(v.is(ListOrdersQuery, { q: "SKU-1 confirmed ünïcode & | !" })).toBe(true);
    expect(v.is(ListActivityQuery, { subject: "order/abc", type: "security.webhook_refused" })).toBe(true);
    for (const text of ["a\u0000b", "\u0000", "line\nbreak", "tab\there", "del\u007f", "c1\u0085"]) {
      expect(v.is(ListOrdersQuery, { q: text })).toBe(false);
      expect(v.is(ListActivityQuery, { subject: text })).toBe(false);
      expect(v.is(ListActivityQuery, { type: text })).toBe(false);
    }
  });
});

describe("ids that name actors", () => {
  // Found by the fuzzer: an order for customer "." or sku "." was accepted, then its deliveries to billing/. and
  // inventory/. reached /_edgewise/deliver/billing/ (a URL parser drops dot segments): 404, dead letters, and an
  // order pending for ever. A customer's key is encoded when it is not URL-safe (customer-key.ts), so "." is a
  // customer like any other.
  test("'.' and '..' are refused as a sku or an order id; other dotted ids pass, and any customer", () => {
    const order = (customerId: string, sku: string) => ({ customerId, items: [{ sku, quantity: 1 }] });
    for (const bad of [".", ".."]) {
      expect(v.is(SkuParam, { sku: bad })).toBe(false);
      expect(v.is(PlaceOrderBody, order(bad, "sku-1"))).toBe(true);
      expect(v.is(PlaceOrderBody, order("alice", bad))).toBe(false);
    }
    for (const good of ["...", ".a", "a.b", "sku-1"]) {
      expect(v.is(SkuParam, { sku: good })).toBe(true);
      expect(v.is(PlaceOrderBody, order(good, good))).toBe(true);
    }
  });
});
