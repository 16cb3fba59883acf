// The serve port on Deno: Deno.serve, with the peer address from the connection info. Runs only under Deno.
import { EdgewiseError } from "../../shared/errors/index.ts";
import type { Serve } from "../serve.ts";

interface DenoAddr {
  hostname?: string;
  port: number;
}
interface DenoServer {
  addr: DenoAddr;
  shutdown(): Promise<void>;
}
interface DenoGlobal {
  serve(
    options: { port: number; hostname: string; onListen?: () => void },
    handler: (request: Request, info: { remoteAddr: DenoAddr }) => Response | Promise<Response>,
  ): DenoServer;
}

export const denoServe: Serve = (options) => {
  if (options.tls) {
    // Deno.serve takes a cert and key but has no option to request or verify client certificates.
    throw new EdgewiseError(
      "config.invalid",
      "TLS listeners (mutual TLS) are Bun-only for now: Deno.serve cannot request client certificates; run this node on Bun or terminate TLS in front of it",
    );
  }
  const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
  const server = deno.serve(
    { port: options.port, hostname: options.hostname, onListen: () => {} },
    (request, info) =>
      options.fetch(request, info.remoteAddr.hostname ? { address: info.remoteAddr.hostname } : {}),
  );
  return { port: server.addr.port, stop: () => server.shutdown() };
};
