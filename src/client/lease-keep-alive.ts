// Keeping a lease alive in the background, as etcd's client KeepAlive does:
// a keep-alive every third of the lease's TTL, retried across endpoints (the
// Client's keepAlive call does that) until it gets through or the lease would
// have expired anyway. It ends when closed, when its signal fires, or when the
// lease is gone (expired or revoked), and says which through `done`.

import { KeyNotFoundError } from './errors.js';

export interface LeaseKeepAliveOptions {
  /** Stops the keep-alives (like close()). */
  readonly signal?: AbortSignal;
  /** Longest wait between two keep-alives. Default 10 000 ms; the wait is a third of the TTL when that is shorter. */
  readonly maxIntervalMs?: number;
  /** Told the TTL each keep-alive answer gives (a progress report; a throw in it is ignored). */
  readonly onKeepAlive?: (ttlSeconds: number) => void;
}

export interface LeaseKeepAlive {
  readonly id: number;
  /** The TTL in seconds the last keep-alive answer gave (0 before the first answer). */
  readonly ttl: number;
  /**
   * Resolves when close() or the signal stopped the keep-alives. Rejects with
   * KeyNotFoundError when the lease no longer exists, or with the last error when
   * no keep-alive got through for a whole TTL (the lease has then expired).
   * A rejection nobody awaits is not reported as unhandled.
   */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

type SendKeepAlive = (signal: AbortSignal) => Promise<{ readonly ttl: number }>;

const RETRY_MS = 250;

/** Waits `ms`, or less when `signal` fires first (no rejection: the caller checks the signal). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

class BackgroundKeepAlive implements LeaseKeepAlive {
  ttl = 0;
  readonly done: Promise<void>;
  readonly #stop = new AbortController();

  constructor(
    readonly id: number,
    send: SendKeepAlive,
    options: LeaseKeepAliveOptions,
  ) {
    const maxIntervalMs = options.maxIntervalMs ?? 10_000;
    if (!Number.isFinite(maxIntervalMs) || maxIntervalMs <= 0) throw new TypeError(`maxIntervalMs must be a positive number (got ${maxIntervalMs})`);
    if (options.signal?.aborted) this.#stop.abort();
    else options.signal?.addEventListener('abort', () => this.#stop.abort(), { once: true });
    this.done = this.#run(send, maxIntervalMs, options.onKeepAlive);
    this.done.catch(() => undefined);
  }

  async #run(send: SendKeepAlive, maxIntervalMs: number, onKeepAlive: ((ttlSeconds: number) => void) | undefined): Promise<void> {
    const stop = this.#stop.signal;
    let lastSuccessMs = performance.now();
    let ttlMs = Infinity;
    while (!stop.aborted) {
      try {
        const answer = await send(stop);
        if (answer.ttl <= 0) throw new KeyNotFoundError(`lease ${this.id} has expired or was revoked`);
        this.ttl = answer.ttl;
        ttlMs = answer.ttl * 1000;
        lastSuccessMs = performance.now();
        try {
          onKeepAlive?.(answer.ttl);
        } catch {
          // a progress report must not stop the keep-alives
        }
        await pause(Math.min(maxIntervalMs, ttlMs / 3), stop);
      } catch (err) {
        if (stop.aborted) return;
        if (err instanceof KeyNotFoundError) throw err;
        // Not through this time: try again soon, until the lease would have expired anyway.
        if (performance.now() - lastSuccessMs >= ttlMs) throw err;
        await pause(Math.min(RETRY_MS, ttlMs / 10), stop);
      }
    }
  }

  async close(): Promise<void> {
    this.#stop.abort();
    await this.done.catch(() => undefined);
  }
}

export function keepLeaseAliveInBackground(id: number, send: SendKeepAlive, options: LeaseKeepAliveOptions = {}): LeaseKeepAlive {
  return new BackgroundKeepAlive(id, send, options);
}
