// A path the API has, asked with a trailing slash: where the canonical path is, for a redirect or a 404 naming it.

/**
 * `path` without its trailing slashes (`/v1/orders/` → `/v1/orders`); undefined when it has none, or when what
 * is left is no path of this origin (`/`, or `//host`, which a `Location` would read as another host).
 */
export function withoutTrailingSlash(path: string): string | undefined {
  if (!path.endsWith("/")) return undefined;
  const trimmed = path.replace(/\/+$/, "");
  if (trimmed === "" || !trimmed.startsWith("/") || trimmed.startsWith("//") || trimmed.startsWith("/\\"))
    return undefined;
  return trimmed;
}

/**
 * The `Location` of a request's canonical URL: its path as sent (percent-encoding kept) without the trailing
 * slashes, and its query. Relative, so no Host header a client chose ends up in it.
 */
export function canonicalLocation(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const path = withoutTrailingSlash(parsed.pathname);
  return path === undefined ? undefined : `${path}${parsed.search}`;
}
