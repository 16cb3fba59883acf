// request-id: every request gets an id (the caller's, if it is sane), echoed in X-Request-Id and kept for logs.
import { requestId as honoRequestId } from "hono/request-id";
import { newId } from "../../../shared/ids/index.ts";

export interface RequestIdOptions {
  headerName?: string;
}

const acceptable = /^[A-Za-z0-9._~-]{1,128}$/;

/** Hono's request-id middleware; an incoming id is kept only if it is short and URL-safe (it lands in logs). */
export function requestId(options: RequestIdOptions = {}) {
  const headerName = options.headerName ?? "X-Request-Id";
  return honoRequestId({
    headerName,
    limitLength: 128,
    generator: (c) => {
      const incoming = c.req.header(headerName);
      return incoming && acceptable.test(incoming) ? incoming : newId();
    },
  });
}
