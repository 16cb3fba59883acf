// A client for the contract suite: calls an operation by its documented path, and holds each answer to the document.
import { issueToken } from "../../edge/middleware/auth/tokens.ts";
import type { Answer, OpenApiChecker } from "./openapi-checker.ts";

/** A caller: its JWT `sub` and scopes. */
export interface Caller {
  sub: string;
  scopes: readonly string[];
}

export interface CallOptions {
  /** Values for the template's `{name}` segments (percent-encoded here). */
  params?: Record<string, string>;
  query?: Record<string, string>;
  /** A JSON body (sent as application/json), or raw text with the headers the case needs. */
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  /** The caller; `null` sends no credentials. Default: an admin of its own (a budget of its own). */
  as?: Caller | null;
  /** The status this case is for: another one is recorded as a violation too. */
  status?: number;
}

export interface ContractAnswer extends Answer {
  /** The body parsed as JSON, when it is. */
  json: unknown;
}

/** Calls operations of a node and records, per operation, the statuses seen and every departure from the document. */
export class ContractClient {
  readonly violations: string[] = [];
  /** `METHOD /template` → statuses answered. */
  readonly seen = new Map<string, Set<number>>();
  private admins = 0;

  constructor(
    readonly base: string,
    private readonly jwtSecret: string,
    readonly checker: OpenApiChecker,
  ) {}

  /** An admin with a rate-limit budget of its own. */
  admin(): Caller {
    this.admins += 1;
    return { sub: `contract-admin-${this.admins}`, scopes: ["admin"] };
  }

  token(caller: Caller): Promise<string> {
    return issueToken({ sub: caller.sub, scopes: caller.scopes, ttlSeconds: 600, secret: this.jwtSecret });
  }

  url(template: string, options: Pick<CallOptions, "params" | "query"> = {}): string {
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = options.params?.[name];
      if (value === undefined) throw new Error(`no value for {${name}} in ${template}`);
      return encodeURIComponent(value);
    });
    const query = options.query ? `?${new URLSearchParams(options.query)}` : "";
    return `${this.base}${path}${query}`;
  }

  /** Calls `method template`, checks the answer against the document, and returns it. */
  async call(method: string, template: string, options: CallOptions = {}): Promise<ContractAnswer> {
    const headers: Record<string, string> = {};
    const caller = options.as === undefined ? this.admin() : options.as;
    if (caller) headers.authorization = `Bearer ${await this.token(caller)}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    Object.assign(headers, options.headers);
    const response = await fetch(this.url(template, options), {
      method,
      headers,
      redirect: "manual",
      ...(options.body !== undefined
        ? { body: JSON.stringify(options.body) }
        : options.raw !== undefined
          ? { body: options.raw }
          : {}),
    });
    const answer = await this.record(method, template, response);
    // What the server took, the document must take too: a client generated from it would refuse to send it otherwise.
    const requestSchema =
      options.body === undefined ? undefined : this.checker.requestSchema(method, template);
    if (answer.status < 300 && requestSchema && !requestSchema(options.body))
      this.violations.push(
        `${method} ${template}: took a body the document refuses: ${JSON.stringify(options.body)} (${requestSchema.errors?.[0]?.instancePath} ${requestSchema.errors?.[0]?.message})`,
      );
    if (options.status !== undefined && answer.status !== options.status)
      this.violations.push(
        `${method} ${template}: expected ${options.status}, got ${answer.status} ${answer.text.slice(0, 200)}`,
      );
    return answer;
  }

  /** Checks and records an answer obtained some other way (a hand-made request). */
  async record(method: string, template: string, response: Response): Promise<ContractAnswer> {
    const text = await response.text();
    const answer = { status: response.status, headers: response.headers, text };
    this.violations.push(...this.checker.check(method, template, answer));
    const key = `${method.toUpperCase()} ${template}`;
    const statuses = this.seen.get(key) ?? new Set<number>();
    statuses.add(response.status);
    this.seen.set(key, statuses);
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { ...answer, json };
  }
}
