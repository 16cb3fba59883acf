// An HTTP proxy that delivers every request two or three times: a duplicate-delivery storm in front of a node's
// delivery endpoint (the broker delivers to PUBLIC_URL, which points here). The broker gets the first answer.
import { prng } from "./invariants.ts";

export interface DuplicatingProxy {
  url: string;
  /** Where copies go: the node's base URL (set once the node is up). */
  setTarget(base: string): void;
  stats(): {
    requests: number;
    copies: number;
    /** Extra copies sent at the same moment as the original. */
    concurrentCopies: number;
    /** Statuses the extra copies got, and how many said `{ duplicate: true }`. */
    copyStatuses: Record<string, number>;
    copiesSeenAsDuplicate: number;
    copyErrors: number;
  };
  /** Waits for the copies still under way, then stops. */
  stop(): Promise<void>;
}

export function startDuplicatingProxy(options: { seed?: number } = {}): DuplicatingProxy {
  const random = prng(options.seed ?? 7);
  let target = "";
  const stats = {
    requests: 0,
    copies: 0,
    concurrentCopies: 0,
    copyStatuses: {} as Record<string, number>,
    copiesSeenAsDuplicate: 0,
    copyErrors: 0,
  };
  const underWay = new Set<Promise<void>>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      const body = await request.arrayBuffer();
      const headers = new Headers(request.headers);
      headers.delete("host");
      headers.delete("content-length");
      const send = () =>
        fetch(`${target}${url.pathname}${url.search}`, {
          method: request.method,
          headers,
          ...(request.method === "GET" || request.method === "HEAD" ? {} : { body }),
        });
      stats.requests++;
      const copies = random() < 0.5 ? 2 : 3;
      const first = send();
      for (let extra = 1; extra < copies; extra++) {
        // A third of the second copies race the original; the rest come up to 300 ms (third copy: 1 s) later.
        const concurrent = extra === 1 && random() < 1 / 3;
        const delayMs = concurrent ? 0 : random() * (extra === 1 ? 300 : 1000);
        if (concurrent) stats.concurrentCopies++;
        stats.copies++;
        const copy = (async () => {
          if (delayMs > 0) await Bun.sleep(delayMs);
          try {
            const response = await send();
            const text = await response.text();
            stats.copyStatuses[response.status] = (stats.copyStatuses[response.status] ?? 0) + 1;
            if (/"duplicate"\s*:\s*true/.test(text)) stats.copiesSeenAsDuplicate++;
          } catch {
            stats.copyErrors++;
          }
        })();
        underWay.add(copy);
        void copy.finally(() => underWay.delete(copy));
      }
      const response = await first;
      const answer = new Headers(response.headers);
      answer.delete("content-encoding");
      answer.delete("content-length");
      return new Response(await response.arrayBuffer(), { status: response.status, headers: answer });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    setTarget(base) {
      target = base.replace(/\/+$/, "");
    },
    stats: () => ({ ...stats, copyStatuses: { ...stats.copyStatuses } }),
    async stop() {
      await Promise.all([...underWay]);
      await server.stop(true);
    },
  };
}
