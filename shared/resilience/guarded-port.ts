// Puts a port's async methods (a store's queries) behind one dependency's breaker and timeout.
import type { Dependencies } from "./dependencies.ts";

type AsyncMethods<T> = {
  [K in keyof T]: T[K] extends (...args: never[]) => Promise<unknown> ? K : never;
}[keyof T];

/**
 * A view of `port` whose listed methods run through `dependencies.call(dependency, …)`: while the breaker is open
 * they fail at once with `breaker.open` (503) instead of waiting on a dead database, and each call has the
 * dependency's timeout. Every other member reads through to `port` (methods bound to it), so the view still
 * satisfies the port's type and a class with private fields keeps working.
 */
export function guardedPort<T extends object>(
  port: T,
  methods: readonly AsyncMethods<T>[],
  dependencies: Dependencies,
  dependency: string,
): T {
  const guarded = new Map<PropertyKey, (...args: unknown[]) => Promise<unknown>>();
  for (const name of methods) {
    const method = port[name] as (...args: unknown[]) => Promise<unknown>;
    guarded.set(name, (...args) => dependencies.call(dependency, () => method.apply(port, args)));
  }
  return new Proxy(port, {
    get(target, name) {
      const wrapped = guarded.get(name);
      if (wrapped) return wrapped;
      const value: unknown = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
