// The resilience Worker (tests only): runs every portable case inside workerd, per request, and answers JSON.
import { suites } from "../cases.ts";
import { runCases } from "../check.ts";

// Nothing at module scope but imports: workerd refuses timers and I/O outside a request, which is the point.
export default {
  async fetch(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname !== "/cases") return new Response("not found", { status: 404 });
    return Response.json(await runCases(suites));
  },
};
