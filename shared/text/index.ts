// Text rules shared by request schemas: free text from a caller may not carry control characters.
import * as v from "valibot";

/**
 * Refuses control characters (C0, DEL, C1). Nothing legitimate puts them in a subject, a search or a URL, and
 * Postgres refuses NUL in text, so one reaching a query would turn a bad request into a 500.
 */
export const noControlCharacters = v.regex<string, string>(
  /^\P{Cc}*$/u,
  "must not contain control characters",
);
