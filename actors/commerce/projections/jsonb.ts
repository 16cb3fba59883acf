// JSON text Postgres's jsonb accepts: it refuses \u0000 and unpaired surrogates, which JSON.stringify emits.

const unpaired = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** JSON.stringify, with NUL and unpaired surrogates in strings replaced by U+FFFD; undefined stays undefined. */
export function jsonbText(value: unknown): string | undefined {
  return JSON.stringify(value, (_key, item: unknown) =>
    typeof item === "string" ? item.replaceAll("\u0000", "\uFFFD").replace(unpaired, "\uFFFD") : item,
  );
}
