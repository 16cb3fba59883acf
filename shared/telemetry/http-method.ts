// A request's method as telemetry writes it: a client chooses it (Deno takes any token, some 8 KB long), so bounded.

/** The methods of RFC 9110: a metric label, a span's name and `http.request.method` name only these (OTel's rule). */
const knownMethods: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
]);

/** The method, or `_OTHER` for any other (OTel's `http.request.method`). */
export const httpMethodName = (method: string): string => (knownMethods.has(method) ? method : "_OTHER");

/** The longest method a log line or a span's `http.request.method_original` keeps. */
export const maxMethodChars = 32;

/** The method as a log line writes it: whole when it is a usual length, else its first `maxMethodChars`. */
export const methodText = (method: string): string =>
  method.length > maxMethodChars ? `${method.slice(0, maxMethodChars)}…` : method;
