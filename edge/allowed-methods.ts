// Which methods an app's routes accept on a path, so a known path asked with another method is 405, not 404.

/** A registered route as Hono lists it in `app.routes`: `ALL` is middleware (or a catch-all), not a handler. */
export interface RouteEntry {
  method: string;
  path: string;
}

/** A route pattern (`/v1/orders/:orderId`, `/_console/*`) as an anchored regular expression. */
function patternOf(path: string): RegExp {
  const segments = path.split("/").map((segment) => {
    if (segment === "*") return ".*";
    if (segment.startsWith(":")) return "[^/]+";
    return segment.replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&");
  });
  return new RegExp(`^${segments.join("/")}$`);
}

/**
 * The methods some handler accepts on `path`, sorted, with HEAD wherever GET is (Hono answers HEAD from GET).
 * Empty when no handler's pattern matches: that path is a 404. Patterns are compiled once per list of routes.
 */
export function allowedMethodsFor(routes: readonly RouteEntry[]): (path: string) => string[] {
  let compiled: Array<{ method: string; pattern: RegExp }> = [];
  let compiledFrom = -1;
  return (path) => {
    if (compiledFrom !== routes.length) {
      compiled = routes
        .filter((route) => route.method !== "ALL")
        .map((route) => ({ method: route.method.toUpperCase(), pattern: patternOf(route.path) }));
      compiledFrom = routes.length;
    }
    const methods = new Set<string>();
    for (const route of compiled) if (route.pattern.test(path)) methods.add(route.method);
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
}
