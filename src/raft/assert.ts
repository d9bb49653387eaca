/** A broken invariant is a programmer error: stop rather than carry on with corrupt state. */
export class RaftInvariantError extends Error {
  override readonly name = 'RaftInvariantError';
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new RaftInvariantError(typeof message === 'string' ? message : message());
  }
}
