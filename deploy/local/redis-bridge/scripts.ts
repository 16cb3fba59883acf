// Lua shebang flags that Upstash accepts and open-source Redis refuses, removed before a script reaches Redis.
import { createHash } from "node:crypto";
import { withoutUpstashOnlyFlags } from "../../../shared/redis/lua-shebang.ts";

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
    const rewritten = withoutUpstashOnlyFlags(script);
    if (rewritten === script) return undefined;
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
