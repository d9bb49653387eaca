// Keys as bytes and as the percent-encoded paths a client may send for them.

import fc from 'fast-check';

/** Bytes that may travel unescaped in a key's path. '.' is always escaped, so no path has a dot segment a client could normalise away. */
function mayStayRaw(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x2d || byte === 0x5f || byte === 0x7e || byte === 0x2f
  );
}

function escape(byte: number, upper: boolean): string {
  const hex = byte.toString(16).padStart(2, '0');
  return `%${upper ? hex.toUpperCase() : hex}`;
}

/**
 * A key's path: bytes that must be escaped always are (as %XX, either case); the others
 * are escaped or not as `choices` says, so one key has many spellings, all meaning it.
 */
export function keyPath(key: Uint8Array, choices: readonly boolean[]): string {
  let out = '';
  for (let i = 0; i < key.length; i++) {
    const choice = choices.length > 0 ? choices[i % choices.length] : false;
    out += mayStayRaw(key[i]) && !choice ? String.fromCharCode(key[i]) : escape(key[i], i % 2 === 0 ? choice : !choice);
  }
  return out;
}

/** Key bytes: short text over a small alphabet (so keys collide and share prefixes), or any bytes. */
export function keyBytes(options: { minLength?: number; maxLength?: number } = {}): fc.Arbitrary<Uint8Array> {
  const minLength = options.minLength ?? 1;
  const maxLength = options.maxLength ?? 12;
  const text = fc
    .array(fc.constantFrom(...'ab/%?#. é+='), { minLength, maxLength })
    .map((chars) => new TextEncoder().encode(chars.join('')))
    .filter((bytes) => bytes.length >= minLength);
  const binary = fc.uint8Array({ minLength, maxLength });
  return fc.oneof(text, binary);
}

/** A path spelling of `key`. */
export function keyPathOf(key: Uint8Array): fc.Arbitrary<string> {
  return fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }).map((choices) => keyPath(key, choices));
}

/** A path spelling of a random key of 1 to 12 bytes. */
export const anyKeyPath: fc.Arbitrary<string> = keyBytes().chain(keyPathOf);

export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
