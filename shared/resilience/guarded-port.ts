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
 *
 * `signals` names the methods that take the caller's AbortSignal, by the index of that argument. The caller's
 * signal (the request's) ends the call, as it would any other; and the method is given the call's own signal in
 * its place, which fires at the dependency's timeout too: the moment the caller is answered 504. A store that
 * checks it before COMMIT rolls back a change that would otherwise land after that answer (a lock wait outlasts
 * the timeout, which answers the caller but cannot stop the transaction).
 */
export function guardedPort<T extends object>(
  port: T,
  methods: readonly AsyncMethods<T>[],
  dependencies: Dependencies,
  dependency: string,
  signals: Partial<Record<AsyncMethods<T>, number>> = {},
): T {
  const guarded = new Map<PropertyKey, (...args: unknown[]) => Promise<unknown>>();
  for (const name of methods) {
    const method = port[name] as (...args: unknown[]) => Promise<unknown>;
    const at = signals[name];
    guarded.set(name, (...args) =>
      at === undefined
        ? dependencies.call(dependency, () => method.apply(port, args))
        : dependencies.call(
            dependency,
            (signal) =>
              method.apply(
                port,
                Array.from({ length: Math.max(args.length, at + 1) }, (_, i) =>
                  i === at ? signal : args[i],
                ),
              ),
            args[at] as AbortSignal | undefined,
          ),
    );
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
