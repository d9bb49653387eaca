// One open POST /raft/messages to a peer, whose body carries frames (frames.ts) for as
// long as the channel keeps it: the peer hands each frame on as it arrives, and answers
// only when the body ends. A request per batch cost about half a millisecond of two
// processes' time per round trip on loopback; a frame on an open stream costs what a
// TCP write does.

import { PassThrough } from 'node:stream';
import type { Client, Dispatcher } from 'undici';
import { PeerRequestTimeoutError } from './errors.js';

/** A peer's error answer is logged, not trusted: read at most this much of it. */
const ERROR_BODY_BYTES_MAX = 4096;

/** Bytes a stream's body holds before write() asks the writer to wait: a few large batches. */
const BODY_HIGH_WATER_BYTES = 1024 * 1024;

export class MessageStream {
  /** Messages written into this stream. */
  messages = 0;
  private readonly body = new PassThrough({ highWaterMark: BODY_HIGH_WATER_BYTES });
  private readonly controller = new AbortController();
  private ending = false;
  private settled = false;
  private answerTimer: NodeJS.Timeout | undefined;
  private readonly lifetimeTimer: NodeJS.Timeout;
  /** Settles once the request is over: undefined when the peer answered 204 to the whole body, else why not. Never rejects. */
  readonly done: Promise<string | undefined>;

  /**
   * Ends itself `lifetimeMs` after opening, written to or not, and must then be answered
   * within `answerTimeoutMs`: that answer is what tells a peer that takes the frames from
   * a link that swallows them.
   */
  constructor(client: Client, path: string, headers: Record<string, string>, lifetimeMs: number, answerTimeoutMs: number) {
    this.lifetimeTimer = setTimeout(() => this.end(answerTimeoutMs), lifetimeMs);
    // undici destroys the body with the request's error; the failure is reported through `done`.
    this.body.on('error', () => {});
    // No header or body deadline: the answer comes only after the body ends (see end()).
    const response = client.request({ method: 'POST', path, headers, body: this.body, signal: this.controller.signal, headersTimeout: 0, bodyTimeout: 0 });
    this.done = response.then(answerOf).catch(failureOf).then((failure) => {
      this.settled = true;
      clearTimeout(this.lifetimeTimer);
      clearTimeout(this.answerTimer);
      this.body.destroy();
      return failure;
    });
  }

  /** Whether frames may still be written: neither ended nor over. */
  get open(): boolean {
    return !this.ending && !this.settled;
  }

  /** Writes one frame; false when the body is full, and the writer should wait for drained(). */
  write(frame: Buffer, messages: number): boolean {
    this.messages += messages;
    return this.body.write(frame);
  }

  /** True once the body takes more; false when it did not within `timeoutMs`, or the stream is over. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.settled) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.body.off('drain', onDrain);
        this.body.off('close', onClose);
        resolve(ok);
      };
      const onDrain = (): void => finish(true);
      const onClose = (): void => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.body.once('drain', onDrain);
      this.body.once('close', onClose);
    });
  }

  /** Ends the body; the peer must answer within `timeoutMs`, which proves it took every frame. */
  end(timeoutMs: number): void {
    if (!this.open) return;
    this.ending = true;
    clearTimeout(this.lifetimeTimer);
    this.body.end();
    this.answerTimer = setTimeout(() => this.abort(new PeerRequestTimeoutError(timeoutMs)), timeoutMs);
  }

  /** Gives the stream up: what it holds unsent is lost (Raft sends again what matters). */
  abort(reason: Error): void {
    if (this.settled) return;
    this.ending = true;
    this.controller.abort(reason);
  }
}

async function answerOf(response: Dispatcher.ResponseData): Promise<string | undefined> {
  if (response.statusCode === 204) {
    await response.body.dump();
    return undefined;
  }
  return `peer answered ${response.statusCode}: ${await readBounded(response.body)}`;
}

function failureOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export async function readBounded(body: Dispatcher.ResponseData['body'], maxBytes = ERROR_BODY_BYTES_MAX): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    bytes += (chunk as Buffer).byteLength;
    if (bytes >= maxBytes) break; // breaking destroys the rest of the body
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
}
