// npm's postinstall: guards postgres.js 3.4's nextWrite against a connection that has closed.
//
// A transaction (sql.begin) or a reserved connection keeps its connection after the connection closes, and
// postgres.js 3.4 still sends to it: begin's ROLLBACK after the query that failed with CONNECTION_CLOSED, say. The
// socket is gone by then, and the write, deferred with setImmediate, throws `null is not an object (evaluating
// 'socket.write')` where nothing can catch it: the process dies. A Postgres connection reset during a transaction
// did that to the node (the chaos test test/chaos/postgres-reset.test.ts, and test/broker/pg-socket.test.ts).
// Upstream: porsager/postgres#1066, #1208 (3.4.10 is not fixed). The guard fails what was being sent with
// CONNECTION_CLOSED instead, as a write to a closed connection should, so the caller's promise settles.
//
// Idempotent; on a postgres.js without that line it only warns, so an upgrade does not break `npm ci`.
import { patchConnection } from "./postgres-connection.mjs";

const marker = "edgewise: the connection closed";
patchConnection("postgres-next-write.mjs", marker, [
  [
    "  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n",
    "  function nextWrite(fn) {\n" +
      `    if (socket === null) { // ${marker} (deploy/patches/postgres-next-write.mjs)\n` +
      "      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n" +
      "      chunk = nextWriteTimer = null\n" +
      "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
      "      return false\n" +
      "    }\n" +
      "    const x = socket.write(chunk, fn)\n",
  ],
]);
