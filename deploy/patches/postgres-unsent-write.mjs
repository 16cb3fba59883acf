// npm's postinstall: postgres.js 3.4 forgets a closed connection's unsent bytes, so the next connection can start.
//
// postgres.js sends a small write on the next setImmediate: `write` keeps the bytes in `chunk` and arms
// `nextWriteTimer` only when it is null, and only the write itself sets both back to null. When the socket closes
// (or the connection is terminated) first, `closed()` (`terminate()`) cancels the timer but leaves both set. The
// connection's next socket then never sends anything: its startup message is appended to the dead socket's bytes,
// behind a timer that will never fire. The connection sits in `connecting` until `connect_timeout` (30 s), and
// every reconnect after that is the same (a shorter connect_timeout does not help), while each query the pool
// hands it waits that long. On Bun a reset does it whenever a query is handed to the connection after the socket
// has closed but before its `close` is emitted: after a Postgres outage the node's calls met such connections and
// answered 504 for a while (test/chaos/postgres-answers.test.ts, test/broker/pg-socket.test.ts).
// Not fixed upstream in 3.4.10; the same fix as LanternOps/breeze#3225 (see also porsager/postgres#1215's
// "every reconnect ends in CONNECT_TIMEOUT").
//
// Idempotent; on a postgres.js without those lines it only warns, so an upgrade does not break `npm ci`.
import { patchConnection } from "./postgres-connection.mjs";

const marker = "edgewise: a closed connection's unsent bytes";
const forget = `chunk = nextWriteTimer = null // ${marker} are dropped (deploy/patches/postgres-unsent-write.mjs)`;
patchConnection("postgres-unsent-write.mjs", marker, [
  [
    "    clearImmediate(nextWriteTimer)\n    if (socket) {\n",
    `    clearImmediate(nextWriteTimer)\n    ${forget}\n    if (socket) {\n`,
  ],
  [
    "    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)\n",
    `    clearImmediate(nextWriteTimer)\n    ${forget}\n    socket.removeListener('data', data)\n`,
  ],
]);
