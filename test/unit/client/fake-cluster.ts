// A tiny in-memory stand-in for cairn members, to test the client library over
// real sockets: one FakeStore (a map, revisions, history) shared by any number
// of FakeMembers (fastify on 127.0.0.1, port 0), so failover from one member to
// another sees the same data. Each member records its requests and can be told
// to misbehave: answer with an error, drop the connection, hang, kill its watch
// streams, split a revision's events across writes.

import type { ServerResponse } from 'node:http';
import { connect, createServer } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Packr } from 'msgpackr';
import type { KeyValue } from '../../../src/kv/kv-commands.js';

const packr = new Packr({ useRecords: false });

export type FakeKv = KeyValue;

export interface FakeEvent {
  readonly type: 'put' | 'delete';
  readonly kv: FakeKv;
  readonly prevKv?: FakeKv;
}

export class FakeError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const bytes = (v: string | Uint8Array): Uint8Array => (typeof v === 'string' ? new TextEncoder().encode(v) : v);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const startsWith = (key: Uint8Array, prefix: Uint8Array): boolean => Buffer.from(key).subarray(0, prefix.length).equals(Buffer.from(prefix));

/** The data every fake member serves: keys, a revision per write, the history of events. */
export class FakeStore {
  revision = 1;
  compactRevision = 0;
  readonly #kvs = new Map<string, FakeKv>();
  readonly history: { revision: number; events: FakeEvent[] }[] = [];
  readonly #listeners = new Set<() => void>();

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get(key: Uint8Array): FakeKv | undefined {
    return this.#kvs.get(hex(key));
  }

  range(prefix: Uint8Array): FakeKv[] {
    return [...this.#kvs.values()].filter((kv) => startsWith(kv.key, prefix)).sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  /** One write transaction of puts and deletes: one revision, its events in order. */
  write(ops: readonly ({ put: { key: string | Uint8Array; value: string | Uint8Array } } | { delete: { key: string | Uint8Array } })[]): number {
    const revision = this.revision + 1;
    const events: FakeEvent[] = [];
    for (const op of ops) {
      if ('put' in op) {
        const key = bytes(op.put.key);
        const prev = this.get(key);
        const kv: FakeKv = { key, value: bytes(op.put.value), createRevision: prev?.createRevision ?? revision, modRevision: revision, version: (prev?.version ?? 0) + 1, lease: 0 };
        this.#kvs.set(hex(key), kv);
        events.push({ type: 'put', kv, ...(prev ? { prevKv: prev } : {}) });
      } else {
        const key = bytes(op.delete.key);
        const prev = this.get(key);
        if (!prev) continue;
        this.#kvs.delete(hex(key));
        events.push({ type: 'delete', kv: { key, value: new Uint8Array(0), createRevision: 0, modRevision: revision, version: 0, lease: 0 }, prevKv: prev });
      }
    }
    if (events.length === 0) return this.revision;
    this.revision = revision;
    this.history.push({ revision, events });
    for (const listener of this.#listeners) listener();
    return revision;
  }

  put(key: string | Uint8Array, value: string | Uint8Array): number {
    return this.write([{ put: { key, value } }]);
  }

  compact(revision: number): void {
    this.compactRevision = revision;
  }
}

/** What a member does with a request instead of serving it. */
export type Misbehaviour =
  | { readonly kind: 'respond'; readonly status: number; readonly body: unknown }
  /** Close the connection without an answer (after reading the request). */
  | { readonly kind: 'drop' }
  /** Never answer (until the member closes). */
  | { readonly kind: 'hang' };

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** Percent-decodes a key from a path, to bytes. */
function decodePath(encoded: string): Uint8Array {
  const out: number[] = [];
  const raw = Buffer.from(encoded, 'latin1');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25) {
      out.push(parseInt(raw.subarray(i + 1, i + 3).toString('latin1'), 16));
      i += 2;
    } else out.push(raw[i]);
  }
  return Uint8Array.from(out);
}

const ORIGINAL = Symbol('original url');
type Raw = { url?: string; [ORIGINAL]?: string };

/** The wire form of a key-value: raw bytes for msgpack; text or base64 (with `encoding`) for JSON. */
function wireKv(kv: FakeKv, msgpack: boolean, base64: boolean): Record<string, unknown> {
  const meta = { createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease };
  if (msgpack) return { key: kv.key, value: kv.value, ...meta };
  const isText = (b: Uint8Array): boolean => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(b);
      return true;
    } catch {
      return false;
    }
  };
  const encode = base64 || !isText(kv.key) || !isText(kv.value);
  const show = (b: Uint8Array): string => (encode ? Buffer.from(b).toString('base64') : Buffer.from(b).toString('utf8'));
  return { key: show(kv.key), value: show(kv.value), ...meta, ...(encode ? { encoding: 'base64' } : {}) };
}

export class FakeMember {
  readonly requests: RecordedRequest[] = [];
  /** Consulted for every request; undefined serves it normally. */
  misbehave: ((request: RecordedRequest) => Misbehaviour | undefined) | undefined;
  /** Answer JSON even when msgpack is asked for (to exercise the client's JSON path). */
  forceJson = false;
  /** Write each event of a revision separately, waiting for `releaseSplit()` between the first and the rest. */
  splitRevisions = false;
  /** A buggy member that replays history from the first revision whatever Last-Event-ID says. */
  ignoreLastEventId = false;
  /** What GET /v1/snapshot streams. */
  snapshotBytes: Uint8Array = new Uint8Array(0);
  /** Break the snapshot's connection after this many bytes. */
  snapshotBreakAfter: number | undefined;
  readonly #app: FastifyInstance;
  readonly #watches = new Set<{ raw: ServerResponse; stop: () => void }>();
  #splitGate: (() => void) | undefined;
  url = '';

  constructor(readonly store: FakeStore) {
    this.#app = Fastify({
      logger: false,
      forceCloseConnections: true,
      routerOptions: { maxParamLength: 65536 },
      rewriteUrl: (req) => {
        const raw = req as Raw;
        const url = raw.url ?? '/';
        for (const route of ['/v1/kv/', '/v1/watch/']) {
          if (url.startsWith(route)) {
            raw[ORIGINAL] = url;
            const q = url.indexOf('?');
            return `${route}key${q < 0 ? '' : url.slice(q)}`;
          }
        }
        return url;
      },
    });
    this.#app.removeAllContentTypeParsers();
    this.#app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    this.#app.addHook('preHandler', async (request, reply) => {
      // Returning the reply tells fastify the hook answered (or hijacked) the request.
      if (await this.#intercept(request, reply)) return reply;
    });
    this.#routes();
  }

  async start(): Promise<this> {
    const address = await this.#app.listen({ host: '127.0.0.1', port: 0 });
    this.url = address;
    return this;
  }

  /** Watch streams open now. */
  get watchCount(): number {
    return this.#watches.size;
  }

  /** Destroys every watch connection (the member stays up). */
  killWatches(): void {
    for (const w of this.#watches) {
      w.stop();
      w.raw.destroy();
    }
    this.#watches.clear();
  }

  /** Lets a split revision's remaining events go out. */
  releaseSplit(): void {
    this.#splitGate?.();
  }

  get splitWaiting(): boolean {
    return this.#splitGate !== undefined;
  }

  /** Sends a progress notice on every watch. */
  progress(): void {
    for (const w of this.#watches) w.raw.write(`event: progress\ndata: ${JSON.stringify({ revision: this.store.revision })}\n\n`);
  }

  async close(): Promise<void> {
    this.killWatches();
    this.#splitGate?.();
    await this.#app.close();
  }

  /** Records the request; returns true when a misbehaviour took it over. */
  async #intercept(request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const recorded = { method: request.method, url: (request.raw as Raw)[ORIGINAL] ?? request.url, headers: { ...request.headers } };
    this.requests.push(recorded);
    const action = this.misbehave?.(recorded);
    if (!action) return false;
    if (action.kind === 'respond') {
      await this.#send(request, reply, action.body, action.status);
    } else if (action.kind === 'drop') {
      reply.hijack();
      request.raw.socket.destroy();
    } else {
      reply.hijack(); // no answer; forceCloseConnections ends it on close()
    }
    return true;
  }

  #format(request: FastifyRequest): { msgpack: boolean; base64: boolean } {
    const msgpack = !this.forceJson && (request.headers.accept ?? '').includes('application/msgpack');
    return { msgpack, base64: (request.query as Record<string, string>).encoding === 'base64' };
  }

  async #send(request: FastifyRequest, reply: FastifyReply, body: unknown, status = 200): Promise<void> {
    const { msgpack } = this.#format(request);
    await reply
      .code(status)
      .type(msgpack ? 'application/msgpack' : 'application/json')
      .send(msgpack ? packr.pack(body) : JSON.stringify(body));
  }

  #header(): Record<string, unknown> {
    return { header: { revision: this.store.revision, raftTerm: 1, memberId: '000000000000000a' } };
  }

  #key(request: FastifyRequest, route: string): Uint8Array {
    const url = (request.raw as Raw)[ORIGINAL] ?? '';
    return decodePath(url.slice(route.length).split('?')[0]);
  }

  #fail(request: FastifyRequest, reply: FastifyReply, error: FakeError): Promise<void> {
    const f = this.#format(request);
    const details = { ...error.details };
    if (details.kv) details.kv = wireKv(details.kv as FakeKv, f.msgpack, f.base64);
    return this.#send(request, reply, { error: { code: error.code, message: error.message, ...details } }, error.status);
  }

  #routes(): void {
    const app = this.#app;
    const store = this.store;
    app.get('/v1/kv/*', async (request, reply) => {
      const q = request.query as Record<string, string>;
      const f = this.#format(request);
      const key = this.#key(request, '/v1/kv/');
      if (q.prefix === 'true') {
        let kvs = store.range(key);
        const count = kvs.length;
        const limit = Number(q.limit ?? 0);
        if (limit > 0) kvs = kvs.slice(0, limit);
        const body = q.countOnly === 'true' ? [] : kvs.map((kv) => wireKv(q.keysOnly === 'true' ? { ...kv, value: new Uint8Array(0) } : kv, f.msgpack, f.base64));
        return this.#send(request, reply, { ...this.#header(), kvs: body, count, more: kvs.length < count });
      }
      const kv = store.get(key);
      if (q.countOnly === 'true') return this.#send(request, reply, { ...this.#header(), kvs: [], count: kv ? 1 : 0, more: false });
      if (!kv) return this.#fail(request, reply, new FakeError(404, 'KeyNotFound', 'key not found'));
      return this.#send(request, reply, { ...this.#header(), kv: wireKv(kv, f.msgpack, f.base64) });
    });
    app.put('/v1/kv/*', async (request, reply) => {
      const q = request.query as Record<string, string>;
      const key = this.#key(request, '/v1/kv/');
      const prev = store.get(key);
      if (q.ifVersion !== undefined && Number(q.ifVersion) !== (prev?.version ?? 0)) {
        return this.#fail(request, reply, new FakeError(412, 'CompareFailed', 'version does not match', prev ? { kv: prev } : {}));
      }
      store.put(key, request.body instanceof Buffer ? new Uint8Array(request.body) : new Uint8Array(0));
      const f = this.#format(request);
      return this.#send(request, reply, { ...this.#header(), ...(q.prevKv === 'true' && prev ? { prevKv: wireKv(prev, f.msgpack, f.base64) } : {}) });
    });
    app.delete('/v1/kv/*', async (request, reply) => {
      const q = request.query as Record<string, string>;
      const key = this.#key(request, '/v1/kv/');
      const doomed = q.prefix === 'true' ? store.range(key) : [store.get(key)].filter((kv): kv is FakeKv => kv !== undefined);
      store.write(doomed.map((kv) => ({ delete: { key: kv.key } })));
      const f = this.#format(request);
      return this.#send(request, reply, { ...this.#header(), deleted: doomed.length, ...(q.prevKv === 'true' ? { prevKvs: doomed.map((kv) => wireKv(kv, f.msgpack, f.base64)) } : {}) });
    });
    app.post('/v1/txn', async (request, reply) => {
      const body = packr.unpack(request.body as Buffer) as { success: Record<string, { key: Uint8Array; value?: Uint8Array }>[] };
      const ops = body.success.map((op) => (op.put ? { put: { key: op.put.key, value: op.put.value ?? new Uint8Array(0) } } : { delete: { key: op.delete.key } }));
      store.write(ops);
      return this.#send(request, reply, { ...this.#header(), succeeded: true, responses: ops.map((op) => ('put' in op ? { put: {} } : { delete: { deleted: 1 } })) });
    });
    app.get('/v1/status', async (request, reply) =>
      this.#send(request, reply, {
        ...this.#header(),
        memberId: '000000000000000a',
        name: 'fake',
        leaderId: '000000000000000a',
        term: 1,
        commitIndex: 1,
        appliedIndex: 1,
        revision: store.revision,
        compactRevision: store.compactRevision,
        dbSizeBytes: 0,
        version: 'fake',
        isLearner: false,
      }),
    );
    app.get('/v1/watch/*', async (request, reply) => this.#watch(request, reply));
    app.get('/v1/snapshot', async (_request, reply) => {
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'application/octet-stream' });
      const data = Buffer.from(this.snapshotBytes);
      if (this.snapshotBreakAfter === undefined) return void raw.end(data);
      raw.write(data.subarray(0, this.snapshotBreakAfter), () => raw.destroy());
    });
  }

  #watch(request: FastifyRequest, reply: FastifyReply): void {
    const q = request.query as Record<string, string>;
    const key = this.#key(request, '/v1/watch/');
    const prefix = q.prefix === 'true';
    const lastEventId = request.headers['last-event-id'];
    let start = lastEventId !== undefined && !this.ignoreLastEventId ? Number(lastEventId) + 1 : q.startRevision ? Number(q.startRevision) : this.store.revision + 1;
    if (this.ignoreLastEventId) start = 1;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    raw.write(': watching\n\n');
    if (start < this.store.compactRevision) {
      raw.end(`event: compacted\ndata: ${JSON.stringify({ compactRevision: this.store.compactRevision })}\n\n`);
      return;
    }
    const base64 = q.encoding === 'base64';
    const text = (revision: number, e: FakeEvent): string =>
      `id: ${revision}\nevent: ${e.type}\ndata: ${JSON.stringify({ kv: wireKv(e.kv, false, base64), ...(q.prevKv === 'true' && e.prevKv ? { prevKv: wireKv(e.prevKv, false, base64) } : {}) })}\n\n`;
    let next = start;
    let busy = false;
    let stopped = false;
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        for (const entry of this.store.history) {
          if (stopped) return;
          if (entry.revision < next) continue;
          next = entry.revision + 1;
          const events = entry.events.filter((e) => (prefix ? startsWith(e.kv.key, key) : Buffer.from(e.kv.key).equals(Buffer.from(key))));
          if (events.length === 0) continue;
          if (this.splitRevisions && events.length > 1) {
            raw.write(text(entry.revision, events[0]));
            await new Promise<void>((resolve) => (this.#splitGate = resolve));
            this.#splitGate = undefined;
            if (stopped) return;
            raw.write(events.slice(1).map((e) => text(entry.revision, e)).join(''));
          } else raw.write(events.map((e) => text(entry.revision, e)).join(''));
        }
      } finally {
        busy = false;
      }
      if (!stopped && this.store.history.some((e) => e.revision >= next)) void pump();
    };
    const unsubscribe = this.store.onChange(() => void pump());
    const watch = {
      raw,
      stop: () => {
        stopped = true;
        unsubscribe();
      },
    };
    this.#watches.add(watch);
    raw.on('close', () => {
      watch.stop();
      this.#watches.delete(watch);
    });
    void pump();
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/**
 * A port nothing listens on. Port 1 when it refuses (privileged: no other test
 * can start listening there meanwhile), else an ephemeral port bound and released.
 */
export async function deadPort(): Promise<number> {
  if (await refused(1)) return 1;
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once `condition` holds; rejects with `what` after `timeoutMs`. Polls: it stands in for an event, not for a delay. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
