// How the console's views write a time (ISO 8601, from epoch ms) and a value too long for its cell.
export const time = (ms: number | undefined) => (ms === undefined ? "" : new Date(ms).toISOString());

export const truncate = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);
