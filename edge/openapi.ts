// What /openapi.json says beyond the routes' own schemas: who may call, and the problem+json every error is.
import type { DescribeRouteOptions, GenerateSpecOptions } from "hono-openapi";
import { problemContentType } from "../shared/errors/index.ts";

const problem = (description: string) => ({
  description,
  content: { [problemContentType]: { schema: { $ref: "#/components/schemas/Problem" } } },
});

/** The errors any authenticated route may answer, by the middleware that answers them. */
const commonErrors = {
  401: problem("No credentials, or a bad token or API key (with WWW-Authenticate: Bearer)"),
  403: problem("The caller lacks the route's scope, or the object is someone else's"),
  429: problem("Rate limited: RateLimit-* headers, and Retry-After"),
  503: problem("A dependency is down or its breaker is open; Retry-After when known"),
};
const bodyErrors = {
  413: problem("The body is over the limit (64 KiB unless BODY_LIMIT says otherwise)"),
  415: problem("The body is not declared as application/json"),
};

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
  defaultValidationErrorResponse: problem("The request is invalid: each field's path and what is wrong"),
  defaultOptions: {
    GET: { responses: commonErrors },
    DELETE: { responses: commonErrors },
    POST: { responses: { ...commonErrors, ...bodyErrors } },
    PUT: { responses: { ...commonErrors, ...bodyErrors } },
  },
};

/** For routes anyone may call: no security requirement, and none of the authenticated routes' errors. */
export const publicRoute: Pick<DescribeRouteOptions, "security"> = { security: [] };
