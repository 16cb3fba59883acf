// Architecture check: order and inventory never reach loyalty, by any chain of imports; loyalty wires itself in.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");

/** Module specifiers of static imports, re-exports and dynamic imports. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const pattern of [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*\(?\s*["']([^"']+)["']/g,
  ]) {
    for (const match of source.matchAll(pattern)) if (match[1]) found.push(match[1]);
  }
  return found;
}

/** Every module reachable from `entry`, as `[importing file, specifier]`, following relative imports. */
function importGraph(entry: string): Array<[string, string]> {
  const edges: Array<[string, string]> = [];
  const seen = new Set<string>();
  const queue = [resolve(root, entry)];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const specifier of specifiers(readFileSync(file, "utf8"))) {
      edges.push([relative(root, file), specifier]);
      if (!specifier.startsWith(".")) continue;
      const target = resolve(dirname(file), specifier);
      if (existsSync(target)) queue.push(target);
    }
  }
  return edges;
}

describe("no loyalty import", () => {
  for (const entry of ["actors/commerce/order.ts", "actors/commerce/inventory.ts"]) {
    test(`${entry} reaches no module whose path mentions loyalty`, () => {
      const edges = importGraph(entry);
      expect(edges.length).toBeGreaterThan(5);
      expect(edges.filter(([, specifier]) => /loyalty/i.test(specifier))).toEqual([]);
    });
  }

  test("order.ts does not address loyalty either", () => {
    const source = readFileSync(resolve(root, "actors/commerce/order.ts"), "utf8");
    expect(source).not.toMatch(/Participants\.loyalty|["'`]loyalty\b/);
  });

  test("the scanner sees loyalty where it is imported", () => {
    const edges = importGraph("actors/commerce/actors.ts");
    expect(edges).toContainEqual(["actors/commerce/actors.ts", "./loyalty.ts"]);
  });
});
