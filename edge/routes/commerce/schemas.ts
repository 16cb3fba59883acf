// Request schemas of the commerce API (API.md), shared by validation and /openapi.json. Objects are strict.
import * as v from "valibot";
import { CustomerId } from "../../../actors/commerce/customer-key.ts";
import { PageLimit } from "../../../actors/commerce/projections/page-limit.ts";
import { noControlCharacters } from "../../../shared/text/index.ts";

/**
 * An id that names an actor (a sku, a customer, an order): URL-safe, and not `.` or `..`, which no delivery URL can
 * carry (a URL parser drops them), so such an order would be accepted and never settle.
 */
const urlSafe = (what: string) =>
  v.pipe(
    v.string(),
    v.regex(
      /^(?!\.\.?$)[A-Za-z0-9._~-]{1,128}$/,
      `${what} must be URL-safe, 1-128 characters, and not '.' or '..'`,
    ),
  );
/**
 * A customerId as the API takes it: customer-key.ts's CustomerId (what messages already in the queue may carry), and
 * not `.` or `..`. No URL path can carry those (clients and servers drop them as dot segments, `%2E` too), so such a
 * customer could place an order but never have an account set or its points read: every order was rejected.
 */
const ApiCustomerId = v.pipe(
  CustomerId,
  v.check((id) => id !== "." && id !== "..", "must not be '.' or '..' (no URL path can carry them)"),
  v.description(
    "Any text of 1-128 UTF-16 code units without control characters, as an identity provider writes a JWT `sub`; " +
      "not `.` or `..` (no URL path can carry them), not starting with `system:`, and at most 189 bytes of UTF-8 " +
      "unless it is URL-safe (`[A-Za-z0-9._~-]`). Compared exactly, with no case folding or Unicode normalization: " +
      "`café` in NFC and in NFD are two customers. Percent-encode it in a path or query (`encodeURIComponent`).",
  ),
);
/** Free text a caller sends into a query (a search, a filter): bounded, without control characters. */
const freeText = (max: number) =>
  v.pipe(v.string(), v.maxLength(max, `must be at most ${max} characters`), noControlCharacters);
const cents = v.pipe(
  v.number("must be a number"),
  v.integer("must be an integer"),
  v.minValue(0, "must be 0 or more"),
  v.maxValue(Number.MAX_SAFE_INTEGER, "is too large"),
);

export const SkuParam = v.strictObject({ sku: urlSafe("sku") });
export const CustomerParam = v.strictObject({ customerId: ApiCustomerId });
export const OrderParam = v.strictObject({ orderId: urlSafe("orderId") });
export const IdParam = v.strictObject({ id: urlSafe("id") });
export const SourceParam = v.strictObject({ source: urlSafe("source") });

export const PutInventoryBody = v.strictObject({
  available: v.pipe(
    v.number(),
    v.integer("must be an integer"),
    v.minValue(0, "must be 0 or more"),
    v.maxValue(1e9),
  ),
  priceCents: cents,
});

export const PutAccountBody = v.strictObject({ balanceCents: cents });

/** The most units one line (one sku, once merged) of an order holds. */
const maxQuantity = 1_000_000;

export const PlaceOrderBody = v.strictObject({
  customerId: ApiCustomerId,
  items: v.pipe(
    v.array(
      v.strictObject({
        sku: urlSafe("sku"),
        quantity: v.pipe(
          v.number(),
          v.integer("must be an integer"),
          v.minValue(1, "must be 1 or more"),
          v.maxValue(maxQuantity),
        ),
      }),
    ),
    v.minLength(1, "must hold 1 to 50 items"),
    v.maxLength(50, "must hold 1 to 50 items"),
    // Lines of one sku are merged into one (the order actor sums them), and a line holds at most 1,000,000.
    v.check(
      (items) => mergedWithinLimit(items),
      `the quantities of one sku must add up to at most ${maxQuantity}`,
    ),
  ),
});

function mergedWithinLimit(items: ReadonlyArray<{ sku: string; quantity: number }>): boolean {
  const bySku = new Map<string, number>();
  for (const { sku, quantity } of items) {
    const total = (bySku.get(sku) ?? 0) + quantity;
    if (total > maxQuantity) return false;
    bySku.set(sku, total);
  }
  return true;
}

/** 1 to 100, 20 when absent: the read models' own rule, so /openapi.json gives its bounds and default. */
const limit = PageLimit;
const cursor = v.optional(v.pipe(v.string(), v.maxLength(512)));

export const ListOrdersQuery = v.strictObject({
  customerId: v.optional(ApiCustomerId),
  status: v.optional(
    v.picklist(["pending", "confirmed", "rejected", "cancelled"], "must be an order status"),
  ),
  q: v.optional(
    v.pipe(
      freeText(200),
      v.description(
        "Up to 8 words, all of which must match: each finds an order by its id, its customer's id or a sku, exactly " +
          "as given or as a word of one (any case; Unicode compared in composed form, NFC); `q` as a whole also " +
          "finds an id with spaces in it. Every id the API accepts is found by itself, but for a customerId of only " +
          "white space: a `q` of only white space searches nothing.",
      ),
    ),
  ),
  limit,
  cursor,
});

export const ListActivityQuery = v.strictObject({
  subject: v.optional(freeText(256)),
  type: v.optional(freeText(256)),
  limit,
  cursor,
});
