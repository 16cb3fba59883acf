// The serve port on Bun: Bun.serve, with the peer address from server.requestIP.
import type { Serve } from "../serve.ts";

export const bunServe: Serve = (options) => {
  const server = Bun.serve({
    port: options.port,
    hostname: options.hostname,
    idleTimeout: 60,
    ...(options.maxRequestBodySize ? { maxRequestBodySize: options.maxRequestBodySize } : {}),
    fetch: (request, self) => {
      const address = self.requestIP(request)?.address;
      return options.fetch(request, address ? { address } : {});
    },
  });
  return {
    port: server.port ?? options.port,
    stop: (force) => server.stop(force),
  };
};
