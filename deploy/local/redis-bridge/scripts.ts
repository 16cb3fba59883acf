// Lua shebang flags that Upstash accepts and open-source Redis refuses, removed before a script reaches Redis.
import { createHash } from "node:crypto";

/**
 * `allow-key-locking` tells Upstash to lock only the script's KEYS (ratelimit-js#154); @upstash/ratelimit 2.x
 * puts it on every script. Redis 7 answers `ERR Unexpected flag in script shebang`, so the bridge drops it.
 * Other unknown flags still reach Redis and fail there, verbatim.
 */
const UPSTASH_ONLY_FLAGS = new Set(["allow-key-locking"]);
const MAX_ALIASES = 1024;

const sha1 = (text: string) => createHash("sha1").update(text, "utf8").digest("hex");

export interface Rewritten {
  script: string;
  /** SHA1 of the script as the client sent it: what the client will pass to EVALSHA. */
  clientSha: string;
  /** SHA1 of the script Redis caches. */
  redisSha: string;
}

/**
 * Rewrites scripts and remembers, for each, the client's SHA1 → Redis's SHA1, so EVALSHA with the hash the client
 * computed (ratelimit hard-codes them) finds the rewritten script instead of failing with NOSCRIPT every time.
 */
export class ScriptShim {
  private readonly aliases = new Map<string, string>();

  /** The script Redis should run, or undefined when it needs no change. */
  rewrite(script: string): Rewritten | undefined {
    if (!script.startsWith("#!")) return undefined;
    const lineEnd = script.indexOf("\n");
    const firstLine = lineEnd < 0 ? script : script.slice(0, lineEnd);
    let changed = false;
    const parts = firstLine.split(" ").map((part) => {
      if (!part.startsWith("flags=")) return part;
      const flags = part.slice("flags=".length).split(",");
      const kept = flags.filter((flag) => !UPSTASH_ONLY_FLAGS.has(flag));
      if (kept.length === flags.length) return part;
      changed = true;
      // `#!lua flags=` (no flags) keeps the shebang semantics the script asked for, minus the lock hint.
      return `flags=${kept.join(",")}`;
    });
    if (!changed) return undefined;
    const rewritten = parts.join(" ") + (lineEnd < 0 ? "" : script.slice(lineEnd));
    const result = { script: rewritten, clientSha: sha1(script), redisSha: sha1(rewritten) };
    this.remember(result.clientSha, result.redisSha);
    return result;
  }

  /** The hash Redis knows the script by. */
  translate(sha: string): string {
    return this.aliases.get(sha.toLowerCase()) ?? sha;
  }

  private remember(clientSha: string, redisSha: string): void {
    if (this.aliases.has(clientSha)) return;
    if (this.aliases.size >= MAX_ALIASES) {
      const oldest = this.aliases.keys().next();
      if (!oldest.done) this.aliases.delete(oldest.value);
    }
    this.aliases.set(clientSha, redisSha);
  }
}
