// What /openapi.json says beyond the routes' own schemas: who may call, and the problem+json every error is.
import { type DescribeRouteOptions, type GenerateSpecOptions, resolver } from "hono-openapi";
import type { Scope } from "./middleware/auth/principal.ts";
import { problemContentType } from "../shared/errors/index.ts";
import type { ResponseSchema } from "./routes/responses.ts";

/** An error answer in the document: problem+json, described. */
export const problem = (description: string) => ({
  description,
  content: { [problemContentType]: { schema: { $ref: "#/components/schemas/Problem" } } },
});

/** A response header in the document: its meaning, its value's schema, and whether every such answer carries it. */
export const header = (
  description: string,
  schema: { type: "string" | "integer"; enum?: string[] },
  required = true,
) => ({
  description,
  required,
  schema,
});

/** What the rate limit says on every answer it counted, as draft-ietf-httpapi-ratelimit-headers names it. */
const rateLimitHeaders = {
  "RateLimit-Limit": header("The caller's budget of requests in the window", { type: "integer" }),
  "RateLimit-Remaining": header("Requests left in the window", { type: "integer" }),
  "RateLimit-Reset": header("Seconds until the window resets", { type: "integer" }),
};
const retryAfter = (required: boolean) => ({
  "Retry-After": header("Seconds to wait before sending the request again", { type: "integer" }, required),
});

/** A 401: problem+json, with the challenge RFC 6750 asks for. */
export const unauthorized = (description: string) => ({
  ...problem(description),
  headers: {
    "WWW-Authenticate": header('`Bearer`, with `error="invalid_token"` when a credential was refused', {
      type: "string",
    }),
  },
});

/** A 503: problem+json, with Retry-After when the node knows when to come back. */
export const unavailable = (description: string) => ({ ...problem(description), headers: retryAfter(false) });

/** The errors any authenticated route may answer, by the middleware that answers them. */
const commonErrors = {
  400: problem(
    "The request is invalid: each field's path and what is wrong; or it carries both Authorization and X-API-Key",
  ),
  401: unauthorized("No credentials, or a bad token or API key"),
  403: problem("The caller lacks the route's scope, or the object is someone else's"),
  429: { ...problem("Rate limited"), headers: { ...retryAfter(true), ...rateLimitHeaders } },
  503: unavailable(
    "A dependency is down or its breaker is open, or Postgres refused for now (a lock, a deadlock); Retry-After when known",
  ),
  504: problem("The request took longer than REQUEST_TIMEOUT (10 s unless set), its body's arrival included"),
};
const bodyErrors = {
  413: problem("The body is over the limit (64 KiB unless BODY_LIMIT says otherwise)"),
  // The body must arrive within the request's time, on every route that takes one.
  504: commonErrors[504],
};

/**
 * The 415 of a route whose JSON body is validated (`validate("json", …)`), added by each such route: the other POSTs
 * (a cancel, a backup) read no JSON body and never answer it; an inbound webhook declares its own (a Content-Encoding).
 */
export const jsonBodyErrors = {
  415: problem(
    "The body is not declared as JSON (application/json, or a +json type), names a charset other than UTF-8, or has a Content-Encoding (Accept-Encoding: identity)",
  ),
};

/** The answers a route without a caller's credentials (an inbound webhook) shares with the authenticated ones. */
export const limitedPublicErrors = {
  400: problem("The request is invalid, or it carries both Authorization and X-API-Key"),
  401: unauthorized("A credential was sent and refused (none is needed here)"),
  429: commonErrors[429],
  503: commonErrors[503],
};

/**
 * A refusal that a browser gets as an HTML page and any other client as problem+json (the console), with the
 * headers of the API's answer of that status.
 */
export const problemOrPage = (status: 400 | 401 | 403, description: string) => {
  const answer: ReturnType<typeof problem> & { headers?: Record<string, ReturnType<typeof header>> } =
    commonErrors[status];
  return {
    ...answer,
    description,
    content: { ...answer.content, "text/html": { schema: { type: "string" as const } } },
  };
};

/** A JSON answer in the document, with the schema of `edge/routes/responses.ts` that tests hold real answers to. */
export const json = (description: string, schema: ResponseSchema) => ({
  description,
  content: { "application/json": { schema: resolver(schema) } },
});

/**
 * An authenticated operation: the scope it needs, in its security requirement (OpenAPI 3.1 lets a non-OAuth scheme
 * list the roles it requires; `admin` implies every scope, as API.md says), and its answers with the errors any
 * authenticated route may give. A public route (`publicRoute`) lists only its own.
 */
export const requires = (
  scope: Scope,
  responses: Responses,
): Pick<DescribeRouteOptions, "security" | "responses"> => ({
  security: [{ bearer: [scope] }, { apiKey: [scope] }],
  ...authenticated(responses),
});

/** An operation any authenticated caller may use, whatever its scopes: its answers, and the common errors. */
export const authenticated = (responses: Responses): Pick<DescribeRouteOptions, "responses"> => ({
  responses: { ...commonErrors, ...withRateLimitHeaders(responses) },
});

/** A rate-limited route's successful answers say what the limit counted (RateLimit-*), as its errors do. */
function withRateLimitHeaders(responses: Responses): Responses {
  return Object.fromEntries(
    Object.entries(responses).map(([status, answer]) => {
      if (!/^2/.test(status) || typeof answer !== "object" || answer === null || "$ref" in answer)
        return [status, answer];
      return [status, { ...answer, headers: { ...rateLimitHeaders, ...answer.headers } }];
    }),
  );
}

type Responses = NonNullable<DescribeRouteOptions["responses"]>;

/** For `openAPIRouteHandler`: the document's frame, and the defaults each operation starts from. */
export const openApiOptions: Partial<GenerateSpecOptions> = {
  documentation: {
    openapi: "3.1.0",
    info: {
      title: "Edgewise",
      version: "0.1.0",
      description: "The Edgewise gateway and reference system. Every error is application/problem+json.",
    },
    // Every operation needs a caller unless it says otherwise (`security: []`, as /healthz does).
    security: [{ bearer: [] }, { apiKey: [] }],
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
      },
      schemas: {
        Problem: {
          type: "object",
          description: "RFC 9457 problem details",
          required: ["type", "title", "status", "detail", "code"],
          properties: {
            type: { type: "string" },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
            code: { type: "string", description: "Edgewise's error code, e.g. request.invalid" },
            instance: { type: "string" },
            errors: {
              type: "array",
              description: "For request.invalid: each field's path and what is wrong with it",
              items: {
                type: "object",
                required: ["path", "message"],
                properties: {
                  path: {
                    type: "string",
                    description: "Dotted, e.g. items.0.quantity; empty for the whole value",
                  },
                  message: { type: "string" },
                },
              },
            },
          },
        },
      },
    },
  },
  // /openapi.json itself is an operation (API.md lists it), not a static file to leave out.
  excludeStaticFile: false,
  defaultValidationErrorResponse: problem(
    "The request is invalid (a field wrong or unknown, or a member named twice in one object): each field's path and what is wrong",
  ),
  // Every route reads its body through the body limit; the authenticated routes' errors come with `requires`.
  defaultOptions: {
    POST: { responses: bodyErrors },
    PUT: { responses: bodyErrors },
  },
};

/** For routes anyone may call: no security requirement, and none of the authenticated routes' errors. */
export const publicRoute: Pick<DescribeRouteOptions, "security"> = { security: [] };
