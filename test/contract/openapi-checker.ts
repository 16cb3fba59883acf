// Holds a real HTTP answer to what /openapi.json says of its operation: status, media type, body schema and headers.
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, JsonObject>>;
  components: { schemas?: Record<string, Json>; headers?: Record<string, Json> };
}

/** An answer as the client saw it: the body read as text (a 204's is empty). */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * Checks answers against the document. Response schemas are checked closed: an object's properties are the only
 * ones it may have (unless the schema says otherwise), so a field an answer carries and the document does not name
 * fails here. The document itself stays open, as API.md lets fields be added.
 */
export class OpenApiChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(readonly document: OpenApiDocument) {
    addFormats(this.ajv);
  }

  /** The operation, or undefined when the document has none for this method and path template. */
  operation(method: string, path: string): JsonObject | undefined {
    return this.document.paths[path]?.[method.toLowerCase()];
  }

  /** Every way the answer departs from the document, as readable lines (none: it conforms). */
  check(method: string, path: string, answer: Answer): string[] {
    const where = `${method} ${path} → ${answer.status}`;
    const operation = this.operation(method, path);
    if (!operation) return [`${where}: no such operation in /openapi.json`];
    const responses = operation.responses as Record<string, JsonObject> | undefined;
    const declared = responses?.[String(answer.status)] ?? responses?.[`${String(answer.status)[0]}XX`];
    if (!declared)
      return [`${where}: status not declared (declared: ${Object.keys(responses ?? {}).join(", ")})`];
    const problems: string[] = [];
    for (const [name, header] of Object.entries((declared.headers ?? {}) as Record<string, Json>)) {
      const resolved = this.resolve(header) as JsonObject;
      const value = answer.headers.get(name);
      if (value === null) {
        if (resolved.required === true) problems.push(`${where}: required header ${name} is missing`);
        continue;
      }
      const schema = resolved.schema as JsonObject | undefined;
      if (schema === undefined) continue;
      // A header is text: an integer's is its digits, read as a number.
      const read = schema.type === "integer" && /^-?\d+$/.test(value) ? Number(value) : value;
      const validate = this.validator(`header ${method} ${path} ${answer.status} ${name}`, schema, false);
      if (!validate(read))
        problems.push(`${where}: header ${name}: ${JSON.stringify(value)} ${validate.errors?.[0]?.message}`);
    }
    const content = (declared.content ?? {}) as Record<string, JsonObject>;
    const mediaType = answer.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
    if (Object.keys(content).length === 0) {
      if (answer.text !== "") problems.push(`${where}: declared without a body, but has one (${mediaType})`);
      return problems;
    }
    const entry = Object.entries(content).find(([type]) => type.split(";")[0]?.trim() === mediaType);
    if (!entry) {
      problems.push(
        `${where}: content type ${mediaType} not declared (declared: ${Object.keys(content).join(", ")})`,
      );
      return problems;
    }
    const [type, media] = entry;
    if (media.schema === undefined || !/json$/.test(type)) return problems;
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      return [...problems, `${where}: ${type} body is not JSON: ${answer.text.slice(0, 80)}`];
    }
    // RFC 9457: a problem's `status` is the answer's; Edgewise's `type` names its `code`.
    if (type === "application/problem+json" && typeof body === "object" && body !== null) {
      const { status, type: uri, code } = body as { status?: unknown; type?: unknown; code?: unknown };
      if (status !== answer.status)
        problems.push(`${where}: problem status ${String(status)} is not the answer's`);
      if (typeof uri !== "string" || !uri.endsWith(`/${String(code)}`))
        problems.push(`${where}: problem type ${String(uri)} does not name its code ${String(code)}`);
    }
    const validate = this.validator(`${method} ${path} ${answer.status} ${type}`, media.schema);
    if (!validate(body)) {
      for (const error of validate.errors ?? []) {
        const extra = (error.params as { additionalProperty?: string }).additionalProperty;
        problems.push(
          `${where}: body${error.instancePath || ""} ${error.message}${extra ? ` (${extra})` : ""} — ${JSON.stringify(body).slice(0, 300)}`,
        );
      }
    }
    return problems;
  }

  /** The schema of a request body, as the document gives it (for checking what the server took or refused). */
  requestSchema(method: string, path: string): ValidateFunction | undefined {
    const body = this.operation(method, path)?.requestBody as JsonObject | undefined;
    const schema = (body?.content as Record<string, JsonObject> | undefined)?.["application/json"]?.schema;
    return schema === undefined ? undefined : this.validator(`request ${method} ${path}`, schema, false);
  }

  /** A parameter's schema, open as written. */
  parameterSchema(method: string, path: string, where: string, name: string): ValidateFunction | undefined {
    const parameters = (this.operation(method, path)?.parameters ?? []) as JsonObject[];
    const found = parameters.find((parameter) => parameter.in === where && parameter.name === name);
    return found?.schema === undefined
      ? undefined
      : this.validator(`${where} ${method} ${path} ${name}`, found.schema, false);
  }

  private validator(key: string, schema: Json, closed = true): ValidateFunction {
    let validate = this.compiled.get(key);
    if (!validate) {
      const inlined = this.resolve(schema);
      validate = this.ajv.compile((closed ? close(inlined) : inlined) as object);
      this.compiled.set(key, validate);
    }
    return validate;
  }

  /** The value with every local `$ref` (`#/components/...`) replaced by what it points at. */
  private resolve(value: Json): Json {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (value === null || typeof value !== "object") return value;
    const ref = value.$ref;
    if (typeof ref === "string") {
      if (!ref.startsWith("#/")) throw new Error(`non-local $ref ${ref}`);
      let target: Json = this.document as unknown as Json;
      for (const segment of ref.slice(2).split("/")) {
        target = (target as JsonObject)?.[segment.replaceAll("~1", "/").replaceAll("~0", "~")] as Json;
        if (target === undefined) throw new Error(`dangling $ref ${ref}`);
      }
      return this.resolve(target);
    }
    return Object.fromEntries(Object.entries(value).map(([name, member]) => [name, this.resolve(member)]));
  }
}

/** Every object schema that names its properties and says nothing of others takes no others. */
function close(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(close);
  if (schema === null || typeof schema !== "object") return schema;
  const closed: JsonObject = Object.fromEntries(
    Object.entries(schema).map(([name, member]) => [
      name,
      name === "properties" ? mapValues(member, close) : close(member),
    ]),
  );
  if (typeof schema.properties === "object" && schema.additionalProperties === undefined)
    closed.additionalProperties = false;
  return closed;
}

function mapValues(value: Json, map: (member: Json) => Json): Json {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([name, member]) => [name, map(member)]));
}
