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

/** The errors any authenticated route may answer, by the middleware that answers them. */
const commonErrors = {
  401: problem("No credentials, or a bad token or API key (with WWW-Authenticate: Bearer)"),
  403: problem("The caller lacks the route's scope, or the object is someone else's"),
  429: problem("Rate limited: RateLimit-* headers, and Retry-After"),
  503: problem(
    "A dependency is down or its breaker is open, or Postgres refused for now (a lock, a deadlock); Retry-After when known",
  ),
};
const bodyErrors = {
  413: problem("The body is over the limit (64 KiB unless BODY_LIMIT says otherwise)"),
  415: problem(
    "The body is not declared as JSON (application/json, or a +json type), names a charset other than UTF-8, or has a Content-Encoding (Accept-Encoding: identity)",
  ),
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
  responses: { ...commonErrors, ...responses },
});

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
          required: ["type", "title", "status", "code"],
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
                properties: { path: { type: "string" }, message: { type: "string" } },
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
