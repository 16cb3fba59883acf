// Identifiers: message ids, timer ids and other opaque ids, all from nanoid.
import { customAlphabet, nanoid } from "nanoid";

/** A new globally unique id (21 URL-safe characters, ~126 bits). */
export const newId = (): string => nanoid();

const lowerAlnum = customAlphabet("0123456789abcdefghijklmnopqrstuvwxyz", 16);

/** A prefixed id for humans to read in logs and URLs, e.g. `msg_3k9d…`. */
export const prefixedId = (prefix: string): string => `${prefix}_${lowerAlnum()}`;
