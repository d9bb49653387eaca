// A reader for the small part of EDN (Clojure's data notation) that Jepsen
// histories use: nil, true/false, integers, strings, keywords, vectors, lists,
// and maps. Anything else is an error, not a guess.

export class Keyword {
  constructor(readonly name: string) {}
}

export type EdnValue = null | boolean | number | string | Keyword | EdnValue[] | EdnMap;

/** A map with keyword keys, by name (`:key` is "key"); other keys are refused. */
export type EdnMap = Map<string, EdnValue>;

export class EdnSyntaxError extends Error {
  constructor(reason: string, column: number) {
    super(`${reason} at column ${column}`);
    this.name = 'EdnSyntaxError';
  }
}

/** Reads exactly one EDN value from `text`. */
export function readEdn(text: string): EdnValue {
  let position = 0;
  const fail = (reason: string): never => {
    throw new EdnSyntaxError(reason, position + 1);
  };
  const skipSpace = (): void => {
    while (position < text.length && /[\s,]/.test(text[position])) position++;
  };
  const readValue = (): EdnValue => {
    skipSpace();
    const first = text[position];
    if (first === undefined) return fail('unexpected end');
    if (first === '"') return readString();
    if (first === '[') return readSequence(']');
    if (first === '(') return readSequence(')');
    if (first === '{') return readMap();
    const token = /^[^\s,[\]{}()"]+/.exec(text.slice(position))?.[0] ?? fail(`unexpected ${JSON.stringify(first)}`);
    position += token.length;
    if (token === 'nil') return null;
    if (token === 'true' || token === 'false') return token === 'true';
    if (token.startsWith(':') && token.length > 1) return new Keyword(token.slice(1));
    if (/^-?\d+$/.test(token)) return Number(token);
    return fail(`unknown token ${token}`);
  };
  const readString = (): string => {
    const match = /^"((?:[^"\\]|\\.)*)"/.exec(text.slice(position)) ?? fail('unterminated string');
    position += match[0].length;
    return JSON.parse(match[0]) as string;
  };
  const readSequence = (close: string): EdnValue[] => {
    position++;
    const items: EdnValue[] = [];
    for (skipSpace(); text[position] !== close; skipSpace()) {
      if (position >= text.length) fail(`missing ${close}`);
      items.push(readValue());
    }
    position++;
    return items;
  };
  const readMap = (): EdnMap => {
    const items = readSequence('}');
    if (items.length % 2 !== 0) fail('a map needs key-value pairs');
    const map: EdnMap = new Map();
    for (let index = 0; index < items.length; index += 2) {
      const key = items[index];
      if (!(key instanceof Keyword)) return fail('map keys must be keywords');
      map.set(key.name, items[index + 1]);
    }
    return map;
  };
  const value = readValue();
  skipSpace();
  if (position !== text.length) fail('trailing text');
  return value;
}
