// Identifiers: message ids, timer ids and other opaque ids, from nanoid.
import { customAlphabet, nanoid } from "nanoid";

/**
 * A new unique id: 9 base-36 characters of the millisecond clock, then 12 nanoid characters (72 random bits),
 * 21 in all. The time prefix keeps inbox inserts on the last B-tree page instead of a random one, which
 * halves the SQLite cost of a turn; ids stay unguessable enough for dedup keys, not for secrets.
 */
export const newId = (): string => Date.now().toString(36).padStart(9, "0") + nanoid(12);

const lowerAlnum = customAlphabet("0123456789abcdefghijklmnopqrstuvwxyz", 16);

/** A prefixed id for humans to read in logs and URLs, e.g. `msg_3k9d…`. */
export const prefixedId = (prefix: string): string => `${prefix}_${lowerAlnum()}`;
