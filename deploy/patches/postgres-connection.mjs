// Applies one of our postinstall edits to postgres.js's connection.js, in each of its builds (ESM, CJS, Workers).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Replaces each `[from, to]` once, unless the file already carries `marker` (so a second `npm install` changes
 * nothing). A file missing any `from` is left as it is with a warning naming `script`: a postgres.js upgrade that
 * moved the code must not break `npm ci`, only say that the edit needs another look.
 */
export function patchConnection(script, marker, edits) {
  for (const variant of ["src", "cjs/src", "cf/src"]) {
    const file = join(root, "node_modules/postgres", variant, "connection.js");
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    if (text.includes(marker)) continue;
    if (!edits.every(([from]) => text.includes(from))) {
      console.warn(`[edgewise] ${file}: not as expected; not patched (deploy/patches/${script})`);
      continue;
    }
    writeFileSync(
      file,
      edits.reduce((patched, [from, to]) => patched.replace(from, to), text),
    );
  }
}
