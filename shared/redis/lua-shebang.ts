// Lua shebang flags that Upstash accepts and open-source Redis refuses, dropped before a script goes to Redis over TCP.

/**
 * @upstash/ratelimit 2.x starts every script with `#!lua flags=allow-key-locking`, a hint only Upstash knows;
 * Redis 7 answers `ERR Unexpected flag in script shebang`. Dropping the flag keeps the shebang (and so Redis 7's
 * shebang semantics) and changes nothing else. Other flags are kept, so a real mistake still fails in Redis.
 */
const upstashOnlyFlags = new Set(["allow-key-locking"]);

/** The script Redis can run: the same string when nothing needed dropping. */
export function withoutUpstashOnlyFlags(script: string): string {
  if (!script.startsWith("#!")) return script;
  const lineEnd = script.indexOf("\n");
  const firstLine = lineEnd < 0 ? script : script.slice(0, lineEnd);
  let changed = false;
  const words = firstLine.split(" ").map((word) => {
    if (!word.startsWith("flags=")) return word;
    const flags = word.slice("flags=".length).split(",");
    const kept = flags.filter((flag) => !upstashOnlyFlags.has(flag));
    if (kept.length === flags.length) return word;
    changed = true;
    return `flags=${kept.join(",")}`;
  });
  return changed ? words.join(" ") + (lineEnd < 0 ? "" : script.slice(lineEnd)) : script;
}
