// A TLS front for the test Postgres, which has no TLS of its own: it speaks Postgres's TLS negotiation, ends TLS with
// a test certificate, and relays the plain protocol to Postgres. It records each session's TLS server name (SNI).
import net from "node:net";
import tls from "node:tls";
import { sslRequest } from "../../deploy/local/broker/pg-socket.ts";

export interface TlsFrontSession {
  /** "sslrequest" (the classic negotiation), "direct" (TLS at once, Postgres 17), or "plain" (refused or relayed). */
  negotiation: "sslrequest" | "direct" | "plain";
  /** The name the client sent in SNI; false when it sent none. */
  servername: string | false;
  alpn: string | false;
  /** The common name of the client's certificate, when `clientCa` is set and it sent one. */
  client?: string;
}

export interface TlsFront {
  port: number;
  sessions: TlsFrontSession[];
  close(): Promise<void>;
}

const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * Listens on 127.0.0.1. An SSLRequest gets "S" and the TLS handshake; a connection opening with a TLS record is
 * direct TLS. Anything else is relayed in plain text, or refused with `plain: "refuse"`. The TLS part is a
 * `tls.Server` on a second loopback port, which the front pipes to: Bun has `tls.createServer`, and this needs no
 * server-side upgrade of an open socket.
 */
export async function startTlsFront(options: {
  target: { host: string; port: number };
  cert: string;
  key: string;
  plain?: "relay" | "refuse";
  /** Asks for a client certificate and admits only those this CA signed (Postgres's `clientcert=verify-full`). */
  clientCa?: string;
}): Promise<TlsFront> {
  const sessions: TlsFrontSession[] = [];
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const relay = (from: net.Socket, head?: Buffer) => {
    const upstream = net.connect(options.target.port, options.target.host);
    track(upstream);
    if (head && head.length > 0) upstream.write(head);
    from.pipe(upstream).pipe(from);
    from.on("close", () => upstream.destroy());
    upstream.on("close", () => from.destroy());
  };
  /** How each hop to the TLS server began, by the hop's local port (the TLS server's remote port). */
  const negotiations = new Map<number, TlsFrontSession["negotiation"]>();
  const inner = tls.createServer(
    {
      cert: options.cert,
      key: options.key,
      ALPNProtocols: ["postgresql"],
      ...(options.clientCa ? { ca: options.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    },
    (secure) => {
      track(secure);
      const negotiation = negotiations.get(secure.remotePort ?? 0) ?? "sslrequest";
      const servername = (secure as tls.TLSSocket & { servername?: string | false }).servername ?? false;
      const client = options.clientCa ? secure.getPeerCertificate()?.subject?.CN : undefined;
      sessions.push({
        negotiation,
        servername: servername || false,
        alpn: secure.alpnProtocol || false,
        ...(client ? { client: String(client) } : {}),
      });
      relay(secure);
    },
  );
  inner.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => inner.listen(0, "127.0.0.1", resolve));
  const innerPort = (inner.address() as net.AddressInfo).port;

  const toInner = (client: net.Socket, head: Buffer | undefined, negotiation: "sslrequest" | "direct") => {
    const hop = net.connect(innerPort, "127.0.0.1", () => {
      if (hop.localPort) negotiations.set(hop.localPort, negotiation);
    });
    track(hop);
    if (head && head.length > 0) hop.write(head);
    client.pipe(hop).pipe(client);
    client.on("close", () => hop.destroy());
    hop.on("close", () => client.destroy());
  };

  const front = net.createServer((client) => {
    track(client);
    client.once("data", (first: Buffer) => {
      client.pause();
      if (first.subarray(0, 8).equals(sslRequest)) {
        client.write("S");
        toInner(client, first.subarray(8), "sslrequest");
      } else if (first[0] === TLS_HANDSHAKE_RECORD) {
        toInner(client, first, "direct");
      } else if (options.plain === "refuse") {
        sessions.push({ negotiation: "plain", servername: false, alpn: false });
        client.destroy();
      } else {
        sessions.push({ negotiation: "plain", servername: false, alpn: false });
        relay(client, first);
      }
      client.resume();
    });
  });
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  return {
    port: (front.address() as net.AddressInfo).port,
    sessions,
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => front.close(() => resolve())),
        new Promise<void>((resolve) => inner.close(() => resolve())),
      ]);
    },
  };
}
