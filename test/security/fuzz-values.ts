// Fuzz values: hostile strings and numbers, JSON Schema → fast-check arbitraries, and mutations of valid values.
import fc from "fast-check";

/**
 * A placeholder resolved when the request is sent, from what exists then: `pool` names a list the harness keeps
 * (orders placed so far, skus, subscriptions…), `index` picks one. `sub` is the subject of the request's caller.
 */
export class Ref {
  constructor(
    readonly pool: string,
    readonly index: number,
  ) {}
  toString(): string {
    return `@${this.pool}[${this.index}]`;
  }
  [fc.toStringMethod](): string {
    return this.toString();
  }
}

export const ref = (pool: string) => fc.nat({ max: 1_000 }).map((index) => new Ref(pool, index));

/** Replaces every Ref in a JSON-ish value (arrays, plain objects; own `__proto__` keys kept as data). */
export function resolveRefs(value: unknown, resolve: (ref: Ref) => string): unknown {
  if (value instanceof Ref) return resolve(value);
  if (Array.isArray(value)) return value.map((item) => resolveRefs(item, resolve));
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(out, key, {
        value: resolveRefs((value as Record<string, unknown>)[key], resolve),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}

/** An object with an own `__proto__` (or other) key, as JSON.parse makes it: a literal would set the prototype. */
export const ownKeys = (entries: Array<[string, unknown]>): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
};

const boundaryNumbers = [
  -1,
  0,
  -0,
  1,
  0.5,
  1.5,
  -1.5,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e9,
  1e9 + 1,
  1e21,
  1e308,
  -1e308,
  Number.MIN_VALUE,
  Number.EPSILON,
  1_000_000,
  1_000_001,
  50,
  51,
];

/** Strings chosen to break parsers, encoders, SQL, templates and lookups. */
export const hostileStrings = [
  "",
  " ",
  "NaN",
  "Infinity",
  "-Infinity",
  "-1",
  "1e999",
  "0x10",
  "00",
  "null",
  "undefined",
  "true",
  "[]",
  "{}",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "../../../../etc/passwd",
  "..\\..\\windows\\win.ini",
  "%2e%2e%2f",
  "%00",
  "\u0000",
  "a\u0000b",
  "\u0000".repeat(64),
  "\ud800",
  "\udfff\ud800",
  "\u202eevil",
  "\ufeffbom",
  "\u200b",
  "😀".repeat(64),
  "ﬀİıſ",
  "ｆｕｌｌｗｉｄｔｈ",
  "<script>alert(1)</script>",
  "' OR '1'='1' --",
  "'; DROP TABLE billing_accounts; --",
  "$1",
  "\\",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, sent as plain text.
  "${7*7}",
  "{{7*7}}",
  "a & b | !c <-> d:*",
  "%s%s%s%n",
  "\r\nX-Injected: 1",
  "admin",
  "*",
  "a".repeat(129),
  "a".repeat(257),
  "a".repeat(5_000),
  "http://169.254.169.254/latest/meta-data/",
  "file:///etc/passwd",
  "javascript:alert(1)",
  `ew_0123456789abcdef_${"A".repeat(43)}`,
  `whsec_${"A".repeat(43)}`,
  "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
];

export const hostileString = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...hostileStrings) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

export const hostileNumber = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...boundaryNumbers) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.integer() },
);

const deepArray = (depth: number): unknown => {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};
const deepObject = (depth: number): unknown => {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
};

/** A JSON value in the wrong place: wrong types, boundaries, prototype keys, deep nesting. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 3, arbitrary: hostileNumber },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(
      null,
      true,
      false,
      [],
      {},
      [null],
      [1, "a", null],
      ownKeys([["__proto__", { admin: true, polluted: "yes" }]]),
      ownKeys([["constructor", { prototype: { polluted: "yes" } }]]),
      { toString: "x", valueOf: 1 },
      deepArray(64),
      deepObject(64),
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

type Schema = Record<string, unknown> & {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  additionalProperties?: boolean | Schema;
};

/** Values for a named field that hit what exists (a known sku, the caller's own id) more often than chance would. */
export type Hints = Record<string, fc.Arbitrary<unknown>>;

/**
 * A structurally valid value for a JSON Schema (the subset hono-openapi and @valibot/to-json-schema emit). An
 * unsupported construct throws: a route whose schema the fuzzer cannot read must fail the suite, not be skipped.
 */
export function fromSchema(schema: Schema, hints: Hints = {}, name?: string): fc.Arbitrary<unknown> {
  const hinted = name !== undefined ? hints[name] : undefined;
  const plain = plainFromSchema(schema, hints);
  return hinted ? fc.oneof({ weight: 3, arbitrary: hinted }, { weight: 1, arbitrary: plain }) : plain;
}

function plainFromSchema(schema: Schema, hints: Hints): fc.Arbitrary<unknown> {
  if ("const" in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum);
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return fc.oneof(...union.map((member) => fromSchema(member, hints)));
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object": {
      const properties = schema.properties ?? {};
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, member] of Object.entries(properties)) model[key] = fromSchema(member, hints, key);
      return fc.record(model, { requiredKeys: (schema.required ?? []).filter((key) => key in properties) });
    }
    case "array": {
      if (!schema.items) throw new Error(`fuzz: array schema without items: ${JSON.stringify(schema)}`);
      const min = schema.minItems ?? 0;
      const max = Math.min(schema.maxItems ?? min + 4, min + 4);
      const item = fromSchema(schema.items, hints);
      // Mostly a few items; sometimes exactly the maximum the schema allows.
      const atMax = schema.maxItems !== undefined && schema.maxItems <= 64;
      return atMax
        ? fc.oneof(
            { weight: 9, arbitrary: fc.array(item, { minLength: min, maxLength: max }) },
            {
              weight: 1,
              arbitrary: fc.array(item, {
                minLength: schema.maxItems as number,
                maxLength: schema.maxItems as number,
              }),
            },
          )
        : fc.array(item, { minLength: min, maxLength: max });
    }
    case "integer": {
      const min = schema.minimum ?? -(2 ** 31);
      const max = Math.min(schema.maximum ?? 2 ** 31, Number.MAX_SAFE_INTEGER);
      const edges = [min, max, min + 1].filter((n) => n >= min && n <= max);
      return fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min, max: Math.min(max, min + 1_000) }) },
        { weight: 1, arbitrary: fc.integer({ min, max }) },
        { weight: 1, arbitrary: fc.constantFrom(...edges) },
      );
    }
    case "number":
      return fc.double({
        noNaN: true,
        noDefaultInfinity: true,
        ...(schema.minimum !== undefined ? { min: schema.minimum } : {}),
        ...(schema.maximum !== undefined ? { max: schema.maximum } : {}),
      });
    case "boolean":
      return fc.boolean();
    case "string": {
      if (schema.pattern) return matching(schema.pattern);
      if (schema.format === "uri") return fc.webUrl();
      if (schema.format !== undefined && schema.format !== "date-time") {
        throw new Error(`fuzz: string format ${schema.format} has no arbitrary`);
      }
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) });
    }
    default:
      throw new Error(`fuzz: schema type ${String(schema.type)} has no arbitrary: ${JSON.stringify(schema)}`);
  }
}

/**
 * Strings matching a JSON Schema pattern. fast-check cannot generate lookarounds: they are left out of the pattern
 * that generates, and the whole pattern filters (`^(?!\.\.?$)[a-z.]{1,9}$` generates `[a-z.]{1,9}`, minus `.` and `..`).
 */
function matching(pattern: string): fc.Arbitrary<string> {
  const full = new RegExp(pattern);
  const generating = pattern.replaceAll(/\(\?<?[=!](?:\\.|[^()\\])*\)/g, "");
  const strings = fc.stringMatching(new RegExp(generating));
  return generating === pattern ? strings : strings.filter((text) => full.test(text));
}

type Path = Array<string | number>;

function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) pathsOf(item, [...prefix, i], out);
  } else if (value !== null && typeof value === "object" && !(value instanceof Ref)) {
    for (const key of Object.keys(value)) {
      pathsOf((value as Record<string, unknown>)[key], [...prefix, key], out);
    }
  }
  return out;
}

function clone(value: unknown): unknown {
  return resolveRefs(value, (r) => r as unknown as string);
}

type Mutation = "replace" | "delete" | "extra" | "duplicate" | "wrap";

function mutateAt(
  value: unknown,
  path: Path,
  mutation: Mutation,
  hostile: unknown,
  extraKey: string,
): unknown {
  const root = clone(value);
  if (path.length === 0) {
    if (mutation === "wrap") return [root];
    if (mutation === "extra" && root !== null && typeof root === "object" && !Array.isArray(root)) {
      Object.defineProperty(root, extraKey, {
        value: hostile,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return root;
    }
    return hostile;
  }
  let parent = root as Record<string | number, unknown>;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  const target = parent[last];
  switch (mutation) {
    case "delete":
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      break;
    case "extra":
      if (
        target !== null &&
        typeof target === "object" &&
        !Array.isArray(target) &&
        !(target instanceof Ref)
      ) {
        Object.defineProperty(target, extraKey, {
          value: hostile,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else parent[last] = hostile;
      break;
    case "duplicate":
      if (Array.isArray(target)) {
        // Many copies: past maxItems, and the same sku twice.
        parent[last] = [...target, ...target, ...target, ...Array.from({ length: 60 }, () => target[0])];
      } else parent[last] = [target, target];
      break;
    case "wrap":
      parent[last] = [target];
      break;
    default:
      parent[last] = hostile;
  }
  return root;
}

const extraKeys = fc.constantFrom(
  "__proto__",
  "constructor",
  "prototype",
  "admin",
  "scope",
  "sub",
  "status",
  "version",
  "balanceCents",
  "reserved",
  "id",
  "quantiy",
  "",
  "a.b",
  "$where",
);

/** The valid value with one or two fields broken: wrong type, boundary, deleted, extra key, duplicated, wrapped. */
export function mutated(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const mutation = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom<Mutation>("replace", "replace", "replace", "delete", "extra", "duplicate", "wrap"),
    hostile: hostileValue,
    key: extraKeys,
  });
  return fc.tuple(valid, mutation, fc.option(mutation, { freq: 3 })).map(([value, first, second]) => {
    let out = value;
    for (const step of second ? [first, second] : [first]) {
      const paths = pathsOf(out);
      out = mutateAt(out, paths[step.at % paths.length] as Path, step.kind, step.hostile, step.key);
    }
    return out;
  });
}

/**
 * JSON text that JSON.stringify cannot produce: numbers past the double range, duplicate keys, trailing commas,
 * comments, a BOM, nesting deep enough to hurt a recursive parser, truncation.
 */
export function rawJsonText(valid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  const trick = fc.constantFrom(
    "number-1e999",
    "number-neg0",
    "number-huge",
    "duplicate-key",
    "proto-key",
    "trailing-comma",
    "comment",
    "bom",
    "truncated",
    "deep",
    "nan",
    "single-quotes",
    "utf16-escape",
  );
  return fc.tuple(valid, trick).map(([value, kind]) => {
    const text = JSON.stringify(resolveRefs(value, (r) => r.toString())) ?? "null";
    const firstNumber = /(-?\d+(\.\d+)?)/;
    switch (kind) {
      case "number-1e999":
        return firstNumber.test(text)
          ? text.replace(firstNumber, "1e999")
          : `${text.slice(0, -1)},"n":1e999}`;
      case "number-neg0":
        return text.replace(firstNumber, "-0");
      case "number-huge":
        return text.replace(firstNumber, "123456789012345678901234567890");
      case "duplicate-key":
        return text.startsWith("{") && text.length > 2
          ? `${text.slice(0, -1)},${text.slice(1)}`
          : `{"a":1,"a":2}`;
      case "proto-key":
        return text.startsWith("{") && text.length > 2
          ? `{"__proto__":{"admin":true},"constructor":{"prototype":{"polluted":1}},${text.slice(1)}`
          : `{"__proto__":{"admin":true}}`;
      case "trailing-comma":
        return text.endsWith("}") ? `${text.slice(0, -1)},}` : `${text},`;
      case "comment":
        return `/* c */${text}`;
      case "bom":
        return `\ufeff${text}`;
      case "truncated":
        return text.slice(0, Math.max(1, Math.floor(text.length / 2)));
      case "deep":
        return `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
      case "nan":
        return text.replace(firstNumber, "NaN");
      case "single-quotes":
        return text.replaceAll('"', "'");
      default:
        return text.replaceAll(
          /"([a-zA-Z]+)":/g,
          (_m, key: string) => `"\\u00${key.charCodeAt(0).toString(16)}${key.slice(1)}":`,
        );
    }
  });
}

/** Bodies with no relation to the route: random JSON, text, bytes. */
export const randomBody = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((json) => ({ json })) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 200 }).map((text) => ({ text })) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ bytes })) },
  { weight: 1, arbitrary: fc.constantFrom({ text: "" }, { text: "null" }, { text: "[]" }, { text: "{" }) },
  // Past the 64 KiB API body limit.
  { weight: 1, arbitrary: fc.constantFrom({ text: `{"a":"${"x".repeat(70_000)}"}` }) },
);

export const contentTypes = fc.constantFrom(
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/json; charset=utf-16",
  "application/json; charset=latin1",
  "application/merge-patch+json",
  "application/xml",
  "application/octet-stream",
  "APPLICATION/JSON",
  "application/json, text/plain",
  "",
  "application/jsonx",
);

/** encodeURIComponent that survives lone surrogates (it would throw). */
export function safeEncode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return encodeURIComponent(text.replaceAll(/[\ud800-\udfff]/g, "\ufffd"));
  }
}

/** A path segment as it goes on the wire: traversal, encodings, NUL, overlong UTF-8, huge. */
export const hostileSegment: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "%2e%2e",
      "%2e%2e%2f%2e%2e%2fv1%2fapi-keys",
      "..%2f..%2f..%2fetc%2fpasswd",
      "..%5c..%5c",
      "%252e%252e%252f",
      "%c0%ae%c0%ae",
      "%00",
      "a%00b",
      "%ZZ",
      "%",
      "%e2%80%ae",
      "%ef%bf%bf",
      "%ed%a0%80",
      "%2F",
      ".",
      "..",
      "...",
      "~",
      "%20",
      "+",
      ";x=1",
      "a;b",
      "*",
      "__proto__",
      "constructor",
      "prototype",
      "hasOwnProperty",
      "a".repeat(129),
      "b".repeat(4_000),
      "%41".repeat(200),
      "CON",
      "a:b",
      "@",
    ),
  },
  { weight: 2, arbitrary: hostileString.map(safeEncode) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).map(safeEncode) },
);

/** A query parameter value as it goes on the wire (already encoded). */
export const hostileQueryValue: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "",
      "0",
      "-1",
      "101",
      "1000",
      "1e2",
      "0x10",
      "NaN",
      "%20100",
      "007",
      "100%00",
      "%00",
      "%ZZ",
      "%",
      "a%26b%3Dc",
      "pending%00",
      "CONFIRMED",
      "eyJzIjoxfQ",
      "eyJfX3Byb3RvX18iOnsiYWRtaW4iOnRydWV9fQ",
      "bnVsbA",
      "W10",
      "_-_-",
      "!!!!",
      "a".repeat(600),
    ),
  },
  { weight: 3, arbitrary: hostileString.map(safeEncode) },
  {
    weight: 1,
    arbitrary: fc
      .jsonValue({ maxDepth: 2 })
      .map((json) => btoa(unescape(encodeURIComponent(JSON.stringify(json) ?? "null"))).replaceAll("=", "")),
  },
);

/** Header values fetch can send (no CR, LF or NUL; Latin-1 only). */
export const headerValue = (text: fc.Arbitrary<string>) =>
  text.map((value) => value.replaceAll(/[\r\n\0]/g, "").replaceAll(/[^\t\x20-\x7e\x80-\xff]/g, "?"));
