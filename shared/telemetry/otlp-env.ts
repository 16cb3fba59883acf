// OTel's standard exporter variables, read the same way by every runtime: signal URLs and `key=value` lists.
import { EdgewiseError } from "../errors/index.ts";

/** Reads one variable (process.env on Bun and Deno, the Worker's env on workerd); blank reads as unset. */
export type EnvReader = (name: string) => string | undefined;

/** An env reader over a plain record (a Worker's `env`): strings only, trimmed, blank as unset. */
export function envReader(env: unknown): EnvReader {
  return (name) => {
    const value = (env as Record<string, unknown> | undefined)?.[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  };
}

/**
 * Where one signal goes: `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT` as given, else `OTEL_EXPORTER_OTLP_ENDPOINT` +
 * `/v1/<signal>`; undefined when neither is set. Throws `config.invalid` for anything but an http(s) URL.
 */
export function otlpSignalUrl(env: EnvReader, signal: "traces" | "metrics"): string | undefined {
  const ownName = `OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`;
  const own = env(ownName)?.trim();
  const base = env("OTEL_EXPORTER_OTLP_ENDPOINT")?.trim();
  const url = own || (base ? `${base.replace(/\/+$/, "")}/v1/${signal}` : undefined);
  if (!url) return undefined;
  let protocol = "";
  try {
    protocol = new URL(url).protocol;
  } catch {
    // refused below
  }
  if (protocol !== "http:" && protocol !== "https:") {
    const name = own ? ownName : "OTEL_EXPORTER_OTLP_ENDPOINT";
    throw new EdgewiseError("config.invalid", `${name} must be an http(s) URL`, {
      issues: [{ path: name, message: "must be an http(s) URL" }],
    });
  }
  return url;
}

/**
 * `key=value,key2=value2` with percent-encoded values (OTel's format for headers and resource attributes). With
 * `headers`, names must be HTTP tokens and are lowercased. Throws `config.invalid` naming the variable and the
 * entry's place, never its text: an entry may be a credential pasted without its name.
 */
export function otlpKeyValues(
  variable: string,
  text: string | undefined,
  options: { headers?: boolean } = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [index, item] of (text ?? "").split(",").entries()) {
    if (item.trim() === "") continue;
    const at = item.indexOf("=");
    let name: string | undefined;
    let value: string | undefined;
    try {
      name = at > 0 ? decodeURIComponent(item.slice(0, at).trim()) : undefined;
      value = at > 0 ? decodeURIComponent(item.slice(at + 1).trim()) : undefined;
    } catch {
      name = undefined;
    }
    const valid =
      name && value !== undefined && (!options.headers || /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name));
    if (!valid || name === undefined || value === undefined) {
      throw new EdgewiseError("config.invalid", `${variable}: entry ${index + 1} is not key=value`, {
        issues: [{ path: variable, message: `entry ${index + 1} is not key=value` }],
      });
    }
    out[options.headers ? name.toLowerCase() : name] = value;
  }
  return out;
}

/**
 * The resource every export describes itself with, traces and metrics alike: OTEL_RESOURCE_ATTRIBUTES (`key=value,…`),
 * with `service.name` always the given one (OTEL_SERVICE_NAME or the default), as the OTel SDKs do.
 */
export function otlpResource(
  serviceName: string,
  attributesText: string | undefined,
): Record<string, string> {
  return { ...otlpKeyValues("OTEL_RESOURCE_ATTRIBUTES", attributesText), "service.name": serviceName };
}
