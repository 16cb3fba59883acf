// Whether the node's port can be bound, asked before the node makes anything in its data dir.
import { createServer } from "node:net";

/**
 * Binds `host:port` and lets it go, rejecting with the error the listener itself would meet (EADDRINUSE with
 * syscall `listen`, EADDRNOTAVAIL for an address not of this machine), so start-failure.ts names it the same way.
 * Without it a busy port was found only at the end of a start, once the data dir, its secrets and PGlite's files
 * had been made. Port 0 picks a free port: nothing to ask. A port taken between this and the listener still fails
 * the start there, as before.
 */
export function portBindable(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    // exclusive: not shared with a cluster's workers (Node), nor through SO_REUSEPORT.
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}
