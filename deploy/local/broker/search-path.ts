// The schema a DATABASE_URL asks for, and a check at start that the server really put the connection in it.
import { EdgewiseError } from "../../../shared/errors/index.ts";
import type { Sql } from "./db.ts";

/**
 * The first schema of the `search_path` that `schema` or the URL asks for (`?search_path=…`, or `options=-c
 * search_path=…` as libpq takes it), as Postgres reads it: lower-cased unless quoted. Undefined when none is asked,
 * or when it starts with `$user` (the role's name decides).
 */
export function requestedSchema(url: string, schema?: string): string | undefined {
  const at = url.indexOf("?");
  const params = new URLSearchParams(at < 0 ? "" : url.slice(at + 1));
  const fromOptions = params
    .get("options")
    ?.match(/(?:-c\s*|--)search_path=((?:\\ |[^\s])+)/)?.[1]
    ?.replaceAll("\\ ", " ");
  const path = schema ?? params.get("search_path") ?? fromOptions;
  const first = path?.split(",")[0]?.trim();
  if (!first || first.startsWith("$user") || first.startsWith('"$user"')) return undefined;
  return first.startsWith('"') ? first.slice(1, -1).replaceAll('""', '"') : first.toLowerCase();
}

/**
 * Refuses (`config.invalid` on DATABASE_URL, exit 78) a pool whose server connection is not in the schema asked for.
 * Why: a pooler may drop a startup parameter it does not track (PgBouncer's `ignore_startup_parameters =
 * search_path`, the usual answer to its "unsupported startup parameter: search_path"), and then every table of this
 * deployment would be made and written in another schema (`public`), beside another deployment's, silently.
 */
export async function checkSchema(sql: Sql, url: string, schema?: string): Promise<void> {
  const want = requestedSchema(url, schema);
  if (want === undefined) return;
  const [row] = await sql<Array<{ schema: string | null }>>`SELECT current_schema() AS schema`;
  if (row?.schema === want) return;
  const message =
    `DATABASE_URL asks for the schema "${want}" (search_path), but the server put the connection in ` +
    `${row?.schema ? `"${row.schema}"` : "no schema"}: a pooler in between dropped the setting (PgBouncer's ` +
    "ignore_startup_parameters), or the schema does not exist, and the tables would land elsewhere. Create the " +
    "schema, give it to every server connection instead (ALTER ROLE … SET search_path, or PgBouncer's " +
    "connect_query), or connect directly";
  throw new EdgewiseError("config.invalid", message, { issues: [{ path: "DATABASE_URL", message }] });
}
