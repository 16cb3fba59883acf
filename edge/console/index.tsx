// The operator console at /_console: topology, live events, breakers, queues and dead letters, actors, traces.
//
// This file composes it; each page or area is a file of its own: overview.tsx (`/_console`), live-stream.ts (the
// event stream), actors.tsx (the inspector), traces.tsx (a trace's waterfall), dead-letter-forms.ts (replay, delete,
// purge), access.tsx (the admin guard, CSRF, sign-out); page.tsx is how each answers, views/ what each renders.
import { Hono } from "hono";
import type { GatewayEnv } from "../env.ts";
import type { JwtOptions } from "../middleware/auth/jwt.ts";
import { consoleAccess, signOutRoutes } from "./access.tsx";
import { actorRoutes } from "./actors.tsx";
import { brokerCaller } from "./broker.ts";
import { deadLetterRoutes } from "./dead-letter-forms.ts";
import { liveStreamRoutes, liveTail } from "./live-stream.ts";
import { overviewRoutes } from "./overview.tsx";
import { consoleSessions } from "./session.ts";
import { consoleScript, consoleStyles } from "./static.ts";
import { traceRoutes } from "./traces.tsx";
import type { ConsoleOptions } from "./types.ts";

export { consolePolicy } from "./page.tsx";
export type {
  ConsoleEventLog,
  ConsoleLogEntry,
  ConsoleOptions,
  ConsoleSpan,
  ConsoleTopology,
  ConsoleTraces,
  LiveOptions,
  TargetDescription,
  TraceSummary,
} from "./types.ts";

/** Whether a path is the console's: its pages, forms, assets and live stream, all under `/_console`. */
export const isConsolePath = (path: string): boolean => path === "/_console" || path.startsWith("/_console/");

export function consoleRoutes(options: ConsoleOptions & { auth?: JwtOptions | undefined }): Hono<GatewayEnv> {
  const sessions = options.sessionStore ?? consoleSessions(options.auth, options.sessions);
  const access = consoleAccess(sessions, options.adminEvents);
  const brokerCall = brokerCaller(options);
  const tail = liveTail(options);
  const app = new Hono<GatewayEnv>();

  app.get("/_console/static/console.js", (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.body(consoleScript, 200, { "content-type": "text/javascript; charset=utf-8" });
  });
  app.get("/_console/static/console.css", (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.body(consoleStyles, 200, { "content-type": "text/css; charset=utf-8" });
  });

  // Every other console route needs an admin: a Bearer token, the session cookie, or `?token=` (once). Registered
  // before them, so it runs first.
  app.use("/_console", access.guard);
  app.use("/_console/*", access.guard);

  overviewRoutes(app, options, access, brokerCall, tail);
  liveStreamRoutes(app, options, access, tail);
  actorRoutes(app, options);
  traceRoutes(app, options);
  deadLetterRoutes(app, options, access, brokerCall);
  signOutRoutes(app, access);
  return app;
}
