// The `limit` of a list query: 1..100, default 20, as a number or as the query string's digits.
import * as v from "valibot";

export const defaultPageLimit = 20;
export const maxPageLimit = 100;

export const PageLimit = v.optional(
  v.pipe(
    v.union([
      v.number(),
      // Text that is not 1–4 digits reads as 0, which the minimum below refuses as "must be 1 to 100" (one issue):
      // a regex here would fail the string branch and leave valibot's union to say "must be (number | string)".
      v.pipe(
        v.string(),
        v.transform((text) => (/^\d{1,4}$/.test(text) ? Number(text) : 0)),
      ),
    ]),
    v.integer(`must be 1 to ${maxPageLimit}`),
    v.minValue(1, `must be 1 to ${maxPageLimit}`),
    v.maxValue(maxPageLimit, `must be 1 to ${maxPageLimit}`),
  ),
  defaultPageLimit,
);

export interface Page<T> {
  items: T[];
  /** Pass it back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}
