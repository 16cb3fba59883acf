// A TCP forwarder to the real Redis that can be cut and restored on the same port (Redis going away, then coming
// back), or muted: connections stay open and commands reach Redis, but no reply comes back (a hung Redis).
import type { Socket, TCPSocketListener } from "bun";

interface Link {
  upstream?: Socket<undefined>;
  pending: Uint8Array[];
}

export class TcpForwarder {
  private listener: TCPSocketListener<Link> | undefined;
  private readonly clients = new Set<Socket<Link>>();
  port = 0;
  /** While true, Redis's replies are swallowed: the connection neither answers nor closes. */
  muted = false;

  constructor(private readonly target: { hostname: string; port: number }) {}

  start(): void {
    const { target, clients } = this;
    const forwarder = this;
    this.listener = Bun.listen<Link>({
      hostname: "127.0.0.1",
      port: this.port,
      socket: {
        open(client) {
          clients.add(client);
          client.data = { pending: [] };
          void Bun.connect({
            ...target,
            socket: {
              open(upstream) {
                client.data.upstream = upstream;
                for (const chunk of client.data.pending) upstream.write(chunk);
                client.data.pending = [];
              },
              data(_, chunk) {
                if (!forwarder.muted) client.write(chunk);
              },
              close() {
                client.end();
              },
              error() {
                client.end();
              },
            },
          }).catch(() => client.end());
        },
        data(client, chunk) {
          if (client.data.upstream) client.data.upstream.write(chunk);
          else client.data.pending.push(new Uint8Array(chunk));
        },
        close(client) {
          clients.delete(client);
          client.data.upstream?.end();
        },
      },
    });
    this.port = this.listener.port;
  }

  /** Stops listening and drops every open connection, as a Redis restart would. */
  stop(): void {
    this.listener?.stop(true);
    this.listener = undefined;
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}
