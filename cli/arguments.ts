import { InvalidArgumentError } from 'commander';

// Parsers for numeric arguments and options: a bad value is a usage error (exit 2)
// that says what was expected.

function integer(value: string): number {
  return /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
}

export function nonNegativeInteger(value: string): number {
  const n = integer(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a whole number >= 0, got ${JSON.stringify(value)}`);
  return n;
}

export function positiveInteger(value: string): number {
  const n = integer(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number >= 1, got ${JSON.stringify(value)}`);
  return n;
}

/** A lease id: decimal, as the API prints it. */
export function leaseId(value: string): number {
  const n = integer(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a lease id (a whole number >= 1, as \`cairn lease list\` prints it), got ${JSON.stringify(value)}`);
  return n;
}

/** A member id: 16 hex digits, as `cairn member list` prints it. */
export function memberId(value: string): string {
  const id = value.trim().toLowerCase();
  if (!/^[0-9a-f]{16}$/.test(id)) throw new InvalidArgumentError(`expected a member id (16 hex digits, as \`cairn member list\` prints it), got ${JSON.stringify(value)}`);
  return id;
}

/** A TCP port, or 0 for "any free port". */
export function port(value: string): number {
  const n = integer(value);
  if (!Number.isSafeInteger(n) || n > 65535) throw new InvalidArgumentError(`expected a port number 0-65535, got ${JSON.stringify(value)}`);
  return n;
}
