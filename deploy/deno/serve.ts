// The serve port on Deno: Deno.serve, with the peer address from the connection info. Runs only under Deno.
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
  const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
  const server = deno.serve(
    { port: options.port, hostname: options.hostname, onListen: () => {} },
    (request, info) =>
      options.fetch(request, info.remoteAddr.hostname ? { address: info.remoteAddr.hostname } : {}),
  );
  return { port: server.addr.port, stop: () => server.shutdown() };
};
