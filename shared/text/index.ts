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

/** True when `text` holds a control character (C0, DEL, C1): what `noControlCharacters` refuses. */
export function hasControlCharacter(text: string): boolean {
  return /\p{Cc}/u.test(text);
}

/**
 * True when `text` holds half a surrogate pair (`"\ud800"` in JSON, or a JWT claim): such text has no UTF-8 form,
 * so Postgres, `TextEncoder` and every other encoder store U+FFFD in its place, and two different ids (`x\ud800`,
 * `x\udc00`, `x\ufffd`) became one account, one loyalty actor and one read-model customer.
 */
export function hasUnpairedSurrogate(text: string): boolean {
  return /\p{Cs}/u.test(text);
}
