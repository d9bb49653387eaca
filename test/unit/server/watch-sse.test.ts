import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildClientApp } from '../../../src/server/app.js';
import { FakeBackend } from './fake-backend.js';

// The watch stream over a real socket (127.0.0.1, port 0) read with fetch: SSE
// needs a live connection. Every write to a watch response is recorded, to check
// that all events of one revision go in one write.

interface Message {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: any;
}

/** The complete messages of an event-stream text (comments skipped). */
function parseMessages(text: string): Message[] {
  return text
    .split('\n\n')
    .slice(0, -1)
    .map((block) => block.split('\n').filter((line) => !line.startsWith(':')))
    .filter((lines) => lines.length > 0)
    .map((lines) => {
      const field = (name: string): string | undefined => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
      const data = field('data');
      return { id: field('id'), event: field('event') ?? 'message', data: data === undefined ? undefined : JSON.parse(data) };
    });
}

interface OpenStream {
  readonly status: number;
  readonly contentType: string | null;
  /** Reads until `done(text so far)` holds or the stream ends; returns the text. Fails after 2 s. */
  readUntil(done: (text: string) => boolean): Promise<string>;
  /** Whether the server ended the stream (read to its end). */
  readonly ended: boolean;
  close(): void;
}

async function openStream(url: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let ended = false;
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    get ended() {
      return ended;
    },
    async readUntil(done) {
      const deadline = setTimeout(() => controller.abort(), 2000);
      try {
        while (!done(text) && !ended) {
          const chunk = await reader.read();
          if (chunk.done) ended = true;
          else text += decoder.decode(chunk.value, { stream: true });
        }
        return text;
      } finally {
        clearTimeout(deadline);
      }
    },
    close: () => controller.abort(),
  };
}

describe('watch as Server-Sent Events', () => {
  let backend: FakeBackend;
  let app: FastifyInstance;
  let base: string;
  let writes: string[];
  /** How many watch writes found the socket's buffer full (write() returned false). */
  let fullWrites: number;
  const streams: OpenStream[] = [];
  const put = (key: string, value: string) => app.inject({ method: 'PUT', url: `/v1/kv/${key}`, payload: value, headers: { 'content-type': 'application/octet-stream' } });
  const watch = async (path: string, headers?: Record<string, string>): Promise<OpenStream> => {
    const stream = await openStream(`${base}${path}`, headers);
    streams.push(stream);
    return stream;
  };

  beforeEach(async () => {
    backend = new FakeBackend();
    app = buildClientApp({ backend });
    writes = [];
    fullWrites = 0;
    app.addHook('onRequest', async (request, reply) => {
      if (!request.originalUrl.startsWith('/v1/watch/')) return;
      const raw = reply.raw;
      const write = raw.write.bind(raw) as (chunk: unknown, ...rest: unknown[]) => boolean;
      raw.write = ((chunk: unknown, ...rest: unknown[]) => {
        writes.push(String(chunk));
        const accepted = write(chunk, ...rest);
        if (!accepted) fullWrites++;
        return accepted;
      }) as typeof raw.write;
    });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    // fetch (undici) opens a fresh connection after an aborted one; it sends no request, so close would wait for it.
    app.server.closeAllConnections();
    await app.close();
  });

  it('sends each revision as messages with its id, all events of a revision in one write', async () => {
    await put('w/a', '1');
    await app.inject({
      method: 'POST',
      url: '/v1/txn',
      payload: { success: [{ put: { key: 'w/b', value: '2' } }, { put: { key: 'w/c', value: '3' } }, { put: { key: 'other', value: 'x' } }] },
    });
    await app.inject({ method: 'DELETE', url: '/v1/kv/w/a' });
    const stream = await watch('/v1/watch/w/?prefix=true&startRevision=1&prevKv=true');
    expect(stream.status).toBe(200);
    expect(stream.contentType).toContain('text/event-stream');
    let text = await stream.readUntil((t) => parseMessages(t).some((m) => m.event === 'delete'));
    let messages = parseMessages(text);
    expect(messages.map((m) => [m.id, m.event, m.data.kv.key])).toEqual([
      ['1', 'put', 'w/a'],
      ['2', 'put', 'w/b'],
      ['2', 'put', 'w/c'],
      ['3', 'delete', 'w/a'],
    ]);
    expect(messages[0].data.kv).toEqual({ key: 'w/a', value: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0 });
    expect(messages[0].data.prevKv).toBeUndefined();
    expect(messages[3].data.prevKv).toMatchObject({ key: 'w/a', value: '1' });
    const revisionTwo = writes.filter((w) => w.includes('id: 2'));
    expect(revisionTwo).toHaveLength(1);
    expect(revisionTwo[0].match(/id: 2\n/g)).toHaveLength(2);
    // Live events after the history.
    await put('w/d', '4');
    text = await stream.readUntil((t) => parseMessages(t).some((m) => m.id === '4'));
    messages = parseMessages(text);
    expect(messages.at(-1)).toMatchObject({ id: '4', event: 'put', data: { kv: { key: 'w/d', value: '4' } } });
    expect(stream.ended).toBe(false);
  });

  it('starts after now without startRevision, and drops prevKv unless asked', async () => {
    await put('k', 'old');
    const stream = await watch('/v1/watch/k');
    await stream.readUntil((t) => t.includes(': watching\n\n'));
    await put('k', 'new');
    const messages = parseMessages(await stream.readUntil((t) => parseMessages(t).some((m) => m.event === 'put')));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ id: '2', data: { kv: { value: 'new', version: 2 } } });
    expect(messages[0].data.prevKv).toBeUndefined();
  });

  it('resumes after Last-Event-ID (which wins over startRevision)', async () => {
    for (const v of ['1', '2', '3']) await put('r', v);
    const stream = await watch('/v1/watch/r?startRevision=1', { 'last-event-id': '2' });
    const messages = parseMessages(await stream.readUntil((t) => parseMessages(t).some((m) => m.event === 'put')));
    expect(messages.map((m) => [m.id, m.data.kv.value])).toEqual([['3', '3']]);
    const fromStart = await watch('/v1/watch/r?startRevision=2');
    expect(parseMessages(await fromStart.readUntil((t) => parseMessages(t).some((m) => m.id === '3'))).map((m) => m.id)).toEqual(['2', '3']);
  });

  it('sends progress without an id, at once with ?progressNow=true and whenever the backend has one', async () => {
    await put('p', '1');
    const stream = await watch('/v1/watch/p?progressNow=true');
    let messages = parseMessages(await stream.readUntil((t) => parseMessages(t).some((m) => m.event === 'progress')));
    expect(messages).toEqual([{ id: undefined, event: 'progress', data: { revision: 1 } }]);
    expect(backend.calls).toContain('requestProgress');
    await put('other', 'x');
    backend.requestProgress();
    messages = parseMessages(await stream.readUntil((t) => parseMessages(t).length === 2));
    expect(messages[1]).toEqual({ id: undefined, event: 'progress', data: { revision: 2 } });
  });

  it('sends compacted with compactRevision and ends the stream', async () => {
    for (const v of ['1', '2', '3']) await put('c', v);
    await app.inject({ method: 'POST', url: '/v1/compact', payload: { revision: 3 } });
    const stream = await watch('/v1/watch/c?startRevision=2');
    const text = await stream.readUntil(() => false);
    expect(stream.ended).toBe(true);
    expect(parseMessages(text)).toEqual([{ id: undefined, event: 'compacted', data: { compactRevision: 3 } }]);
  });

  it('sends closed and ends the stream when the backend closes the watch', async () => {
    const stream = await watch('/v1/watch/x');
    await stream.readUntil((t) => t.includes(': watching\n\n'));
    backend.closeWatches('member shutting down');
    const text = await stream.readUntil(() => false);
    expect(stream.ended).toBe(true);
    expect(parseMessages(text)).toEqual([{ id: undefined, event: 'closed', data: { reason: 'member shutting down' } }]);
  });

  it('keeps keys and values that are not UTF-8, and base64 everything with ?encoding=base64', async () => {
    await app.inject({ method: 'PUT', url: '/v1/kv/b%FF', payload: Buffer.from([0x00, 0xfe]), headers: { 'content-type': 'application/octet-stream' } });
    await put('b', 'text');
    const stream = await watch('/v1/watch/b?prefix=true&startRevision=1');
    const [binary, text] = parseMessages(await stream.readUntil((t) => parseMessages(t).some((m) => m.id === '2')));
    expect(binary.data.kv.encoding).toBe('base64');
    expect(Buffer.from(binary.data.kv.key, 'base64')).toEqual(Buffer.from([0x62, 0xff]));
    expect(Buffer.from(binary.data.kv.value, 'base64')).toEqual(Buffer.from([0x00, 0xfe]));
    expect(text.data.kv).toMatchObject({ key: 'b', value: 'text' });
    const forced = await watch('/v1/watch/b?encoding=base64&startRevision=2');
    const [message] = parseMessages(await forced.readUntil((t) => parseMessages(t).some((m) => m.id === '2')));
    expect(message.data.kv).toMatchObject({ key: 'Yg==', value: Buffer.from('text').toString('base64'), encoding: 'base64' });
  });

  it('waits for the socket to drain when a write fills its buffer, losing nothing', async () => {
    const value = 'v'.repeat(256 * 1024);
    for (let i = 0; i < 8; i++) await put(`big/${i}`, value);
    const stream = await watch('/v1/watch/big/?prefix=true&startRevision=1');
    const messages = parseMessages(await stream.readUntil((t) => parseMessages(t).length === 8));
    expect(messages.map((m) => m.id)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
    expect(messages.every((m) => m.data.kv.value === value)).toBe(true);
    expect(fullWrites).toBeGreaterThan(0);
  });

  it('ends the backend watch when the client goes away', async () => {
    const stream = await watch('/v1/watch/gone?prefix=true');
    await stream.readUntil((t) => t.includes(': watching\n\n'));
    expect(backend.watcherCount).toBe(1);
    stream.close();
    const deadline = Date.now() + 2000;
    while (backend.watcherCount > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(backend.watcherCount).toBe(0);
  });

  it('refuses a malformed watch with 400 before the stream starts', async () => {
    const cases: [string, Record<string, string>][] = [
      ['/v1/watch/k?startRevision=-1', {}],
      ['/v1/watch/k?startRevision=soon', {}],
      ['/v1/watch/k?since=3', {}],
      ['/v1/watch/k?prefix=perhaps', {}],
      ['/v1/watch/', {}],
      ['/v1/watch/%zz', {}],
      ['/v1/watch/k', { 'last-event-id': 'abc' }],
      ['/v1/watch/k', { 'last-event-id': '-3' }],
    ];
    for (const [url, headers] of cases) {
      const r = await app.inject({ url, headers });
      expect(r.statusCode, url).toBe(400);
      expect(JSON.parse(r.body).error.code).toBe('InvalidArgument');
    }
    expect(backend.calls).not.toContain('watch');
  });
});
