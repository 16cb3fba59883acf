// A floor under the HMAC secrets a deployment sets: refuses the obviously weak ones (one letter, a phrase repeated).
//
// Not a strength meter: a secret that passes may still be guessable (a sentence, a password reused). It catches what
// a length check lets through, `JWT_SECRET=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa` or `changeme` typed until it is long
// enough, and lets any random secret pass (`openssl rand -hex 32`, `-base64 32`, a UUID).

/** Fewer different characters than this: refused whatever the length. */
export const minDistinctCharacters = 8;
/** An estimate under this many bits: refused (a random 16-character hex string carries 64). */
export const minEstimatedBits = 64;

/**
 * The shortest piece the text is a repetition of (its last copy may be cut short), by the prefix function, in one
 * pass: the whole text when it repeats nothing.
 */
function repeatedPiece(chars: readonly string[]): readonly string[] {
  const border = new Array<number>(chars.length).fill(0);
  for (let i = 1; i < chars.length; i++) {
    let k = border[i - 1] as number;
    while (k > 0 && chars[i] !== chars[k]) k = border[k - 1] as number;
    if (chars[i] === chars[k]) k++;
    border[i] = k;
  }
  const period = chars.length - (border[chars.length - 1] ?? 0);
  return chars.slice(0, period);
}

/**
 * A rough count of the bits in a secret: the shortest piece it repeats, times the Shannon entropy of that piece's
 * characters (by their frequencies in it). Repeating a piece adds nothing, and neither does a skewed alphabet.
 */
export function estimatedBits(secret: string): number {
  const piece = repeatedPiece([...secret]);
  const counts = new Map<string, number>();
  for (const char of piece) counts.set(char, (counts.get(char) ?? 0) + 1);
  let perChar = 0;
  for (const count of counts.values()) {
    const p = count / piece.length;
    perChar -= p * Math.log2(p);
  }
  return perChar * piece.length;
}

/** Whether a secret is too weak to sign with: too few different characters, or too few bits by the estimate. */
export function isWeakSecret(secret: string): boolean {
  return new Set([...secret]).size < minDistinctCharacters || estimatedBits(secret) < minEstimatedBits;
}

/** The refusal's text: names the variable and the rule, never the value. */
export const weakSecretMessage = (name: string) =>
  `${name} is too weak to sign with: it needs at least ${minDistinctCharacters} different characters and about ${minEstimatedBits} bits, not one character or a short piece repeated (generate one with \`openssl rand -hex 32\`)`;
