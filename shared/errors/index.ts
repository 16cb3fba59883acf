// The one error model: a code, an HTTP status and a public flag, rendered as problem+json (RFC 9457).

const brand = "__edgewiseError" as const;

/** Every error code Edgewise raises on purpose. Clients may rely on these; never match on message text. */
export const errorCatalog = {
  "actor.unknown_type": { status: 404, title: "Unknown actor type", public: true },
  "actor.invalid_key": { status: 400, title: "Invalid actor key", public: true },
  "actor.reset": { status: 503, title: "Actor was reset before its turn committed", public: true },
  "actor.handler_failed": { status: 500, title: "Actor handler failed", public: false },
  "actor.turn_timeout": { status: 503, title: "Actor turn took too long", public: true },
  "message.invalid": { status: 422, title: "Message failed its schema", public: true },
  "message.unknown_type": { status: 422, title: "Unknown message type", public: true },
  "envelope.invalid": { status: 400, title: "Invalid message envelope", public: true },
  "state.invalid": { status: 500, title: "Actor state failed its schema", public: false },
  "state.migration_failed": { status: 500, title: "Actor state migration failed", public: false },
  /** Retryable: after a rollback, the code that wrote the state may come back (and the queue keeps retrying). */
  "state.newer_than_code": {
    status: 503,
    title: "Actor state was written by a newer version of the code",
    public: true,
  },
  "config.invalid": { status: 500, title: "Invalid configuration", public: false },
  "request.invalid": { status: 400, title: "Invalid request", public: true },
  "request.too_large": { status: 413, title: "Request body too large", public: true },
  "request.unsupported_media_type": { status: 415, title: "Unsupported media type", public: true },
  unauthorized: { status: 401, title: "Unauthorized", public: true },
  forbidden: { status: 403, title: "Forbidden", public: true },
  not_found: { status: 404, title: "Not found", public: true },
  /** A path the API knows, asked with a method it does not take there; the response's `Allow` lists those it does. */
  method_not_allowed: { status: 405, title: "Method not allowed", public: true },
  conflict: { status: 409, title: "Conflict", public: true },
  "idempotency.mismatch": {
    status: 422,
    title: "Idempotency-Key reused with a different request",
    public: true,
  },
  rate_limited: { status: 429, title: "Too many requests", public: true },
  "broker.unavailable": { status: 503, title: "Message broker unavailable", public: true },
  unavailable: { status: 503, title: "Service unavailable", public: true },
  /** Load shed before anything was written: the node's queues are too far behind; retry after `Retry-After`. */
  overloaded: {
    status: 503,
    title: "Overloaded: new work is refused until the backlog drains",
    public: true,
  },
  "breaker.open": { status: 503, title: "A dependency is unavailable (circuit open)", public: true },
  "bulkhead.full": { status: 503, title: "Too many concurrent calls to a dependency", public: true },
  timeout: { status: 504, title: "Request timed out", public: true },
  internal: { status: 500, title: "Internal error", public: false },
} as const satisfies Record<string, { status: number; title: string; public: boolean }>;

export type ErrorCode = keyof typeof errorCatalog | (string & {});

export interface FieldIssue {
  /** Dotted path to the field, e.g. `items.0.quantity`; empty for the whole value. */
  path: string;
  message: string;
}

export interface ErrorOptions {
  status?: number;
  public?: boolean;
  issues?: FieldIssue[];
  meta?: Record<string, unknown>;
  cause?: unknown;
}

/** The serializable shape of an error, safe to send between hosts (DO RPC, HTTP). */
export interface ErrorData {
  [brand]: true;
  code: ErrorCode;
  status: number;
  public: boolean;
  message: string;
  issues?: FieldIssue[];
  meta?: Record<string, unknown>;
}

export class EdgewiseError extends Error {
  readonly [brand] = true as const;
  readonly code: ErrorCode;
  readonly status: number;
  readonly public: boolean;
  readonly issues: FieldIssue[] | undefined;
  readonly meta: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const known = (errorCatalog as Record<string, { status: number; public: boolean }>)[code];
    this.name = "EdgewiseError";
    this.code = code;
    this.status = options.status ?? known?.status ?? 500;
    this.public = options.public ?? known?.public ?? false;
    this.issues = options.issues;
    this.meta = options.meta;
  }

  toJSON(): ErrorData {
    return {
      [brand]: true,
      code: this.code,
      status: this.status,
      public: this.public,
      message: this.message,
      ...(this.issues ? { issues: this.issues } : {}),
      ...(this.meta ? { meta: this.meta } : {}),
    };
  }
}

/** Recognizes an Edgewise error by its brand, so it survives structured clone and JSON. */
export function isEdgewiseError(value: unknown): value is EdgewiseError | ErrorData {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[brand] === true;
}

/** Turns anything thrown into an EdgewiseError; unknown errors become a non-public `internal`. */
export function toEdgewiseError(value: unknown): EdgewiseError {
  if (value instanceof EdgewiseError) return value;
  if (isEdgewiseError(value)) {
    return new EdgewiseError(value.code, value.message, {
      status: value.status,
      public: value.public,
      ...(value.issues ? { issues: value.issues } : {}),
      ...(value.meta ? { meta: value.meta } : {}),
    });
  }
  return new EdgewiseError("internal", value instanceof Error ? value.message : String(value), {
    cause: value,
  });
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  errors?: FieldIssue[];
}

/** Renders an error as an RFC 9457 problem. Non-public errors never leak their message. */
export function toProblem(value: unknown, instance?: string): Problem {
  const error = toEdgewiseError(value);
  const known = (errorCatalog as Record<string, { title: string }>)[error.code];
  const title = known?.title ?? (error.public ? error.code : "Internal error");
  return {
    type: `https://edgewise.dev/problems/${error.public ? error.code : "internal"}`,
    title: error.public ? title : "Internal error",
    status: error.status,
    detail: error.public ? error.message : "The server could not complete the request.",
    code: error.public ? String(error.code) : "internal",
    ...(instance ? { instance } : {}),
    ...(error.public && error.issues ? { errors: error.issues } : {}),
  };
}

export const problemContentType = "application/problem+json";

/**
 * A problem+json Response, for the places that answer HTTP without a framework (a Worker whose config is bad, a
 * node shutting down). `no-store`, as every answer of the gateway (its secure headers): a shared cache keeps none.
 */
export function problemResponse(
  value: unknown,
  init: { instance?: string; headers?: HeadersInit } = {},
): Response {
  const problem = toProblem(value, init.instance);
  const headers = new Headers(init.headers);
  headers.set("content-type", problemContentType);
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
  return new Response(JSON.stringify(problem), { status: problem.status, headers });
}
