/** The outcome of a request cannot be known: it may or may not have been applied (API: 504 Timeout). */
export class OutcomeUnknownError extends Error {
  override readonly name = 'OutcomeUnknownError';
}

/** The request was not accepted, so nothing happened (API: 503 Unavailable). */
export class NotAcceptedError extends Error {
  override readonly name = 'NotAcceptedError';
}

interface Waiter<T, Tag> {
  resolve(value: T): void;
  reject(err: Error): void;
  /** What the owner keeps with the request (a proposal's term and bytes). */
  tag: Tag;
}

/**
 * Requests waiting for their outcome, by id. Bounded: past `max` a new request is
 * refused at once. A request whose signal aborts (its deadline, or the client
 * gone) is answered "outcome unknown" and forgotten; a late result is ignored.
 */
export class Waiters<T, Tag = undefined> {
  private readonly waiting = new Map<string, Waiter<T, Tag>>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.waiting.size;
  }

  add(id: string, signal: AbortSignal, tag: Tag): Promise<T> {
    if (this.waiting.size >= this.max) return Promise.reject(new NotAcceptedError(`too many requests waiting (${this.max})`));
    if (signal.aborted) return Promise.reject(new OutcomeUnknownError('request deadline passed before it was proposed'));
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.waiting.delete(id)) reject(new OutcomeUnknownError('request deadline passed before its outcome was known'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(id, {
        resolve: (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
        tag,
      });
    });
  }

  has(id: string): boolean {
    return this.waiting.has(id);
  }

  /** The waiting requests' ids and tags (a copy: the caller may settle or retag them meanwhile). */
  tagged(): [string, Tag][] {
    return [...this.waiting].map(([id, w]) => [id, w.tag]);
  }

  retag(id: string, tag: Tag): void {
    const w = this.waiting.get(id);
    if (w) w.tag = tag;
  }

  resolve(id: string, value: T): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.resolve(value);
  }

  reject(id: string, err: Error): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.reject(err);
  }

  rejectAll(err: Error): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of all) w.reject(err);
  }
}
