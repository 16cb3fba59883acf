// Turns granted scope names into the principal's scope set, keeping only the scopes this gateway knows.
import { type Scope, scopes } from "./principal.ts";

const known: ReadonlySet<string> = new Set<string>(scopes);

export function isScope(value: string): value is Scope {
  return known.has(value);
}

/** Unknown names are dropped, not refused: an issuer may grant scopes meant for other services. */
export function scopeSet(names: Iterable<string>): ReadonlySet<string> {
  const granted = new Set<string>();
  for (const name of names) if (isScope(name)) granted.add(name);
  return granted;
}
