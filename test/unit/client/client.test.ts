import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  Client,
  ClientClosedError,
  CompactedError,
  CompareFailedError,
  ConnectionError,
  InternalError,
  InvalidArgumentError,
  KeyNotFoundError,
  TimeoutError,
  UnavailableError,
  type ClientOptions,
} from '../../../src/client/index.js';
import { deadPort, FakeMember, FakeStore, waitFor } from './fake-cluster.js';

// The client over real sockets against fake members (fake-cluster.ts): round
// trips, typed errors, failover, unknown outcomes, deadlines and aborts.

const members: FakeMember[] = [];
const clients: Client[] = [];

async function startMember(store: FakeStore): Promise<FakeMember> {
  const member = await new FakeMember(store).start();
  members.push(member);
  return member;
}

function connect(endpoints: string[], options: Partial<ClientOptions> = {}): Client {
  const client = new Client({ endpoints, timeoutMs: 2000, backoff: { initialMs: 5, maxMs: 20 }, ...options });
  clients.push(client);
  return client;
}

const puts = (m: FakeMember) => m.requests.filter((r) => r.method === 'PUT').length;
const gets = (m: FakeMember) => m.requests.filter((r) => r.method === 'GET').length;

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(members.splice(0).map((m) => m.close()));
});

describe('key-value round trips', () => {
  it('puts, gets, ranges and deletes text', async () => {
    const store = new FakeStore();
    const client = connect([(await startMember(store)).url]);
    const put = await client.put('app/db/url', 'postgres://db');
    expect(put.header.revision).toBe(2);
    const kv = await client.get('app/db/url');
    expect(kv?.text()).toBe('postgres://db');
    expect(kv?.keyText()).toBe('app/db/url');
    expect(kv).toMatchObject({ createRevision: 2, modRevision: 2, version: 1, lease: 0 });
    expect(await client.get('app/missing')).toBeNull();

    await client.put('app/db/user', 'me');
    await client.put('other', 'x');
    const range = await client.range('app/', { limit: 1 });
    expect(range.kvs.map((k) => k.keyText())).toEqual(['app/db/url']);
    expect(range).toMatchObject({ count: 2, more: true });
    expect((await client.range('')).count).toBe(3);

    const previous = await client.put('app/db/user', 'you', { prevKv: true });
    expect(previous.prevKv?.text()).toBe('me');
    const deleted = await client.delete('app/', { prefix: true, prevKv: true });
    expect(deleted.deleted).toBe(2);
    expect(deleted.prevKvs?.map((k) => k.text()).sort()).toEqual(['postgres://db', 'you']);
    expect(await client.get('app/db/url')).toBeNull();
  });

  it('keeps keys with / and odd bytes, and binary values, exact (msgpack and JSON answers)', async () => {
    const store = new FakeStore();
    const msgpackMember = await startMember(store);
    const jsonMember = await startMember(store);
    jsonMember.forceJson = true;
    const key = Uint8Array.from([...Buffer.from('dir/../. /%?#+'), 0xff, 0x00, 0x2f, 0x2e]);
    const value = Uint8Array.from([0, 255, 128, 10, 13]);
    await connect([msgpackMember.url]).put(key, value);
    expect(Buffer.from(store.get(key)!.value)).toEqual(Buffer.from(value)); // the member decoded the path to the same bytes
    for (const member of [msgpackMember, jsonMember]) {
      const kv = await connect([member.url]).get(key);
      expect(kv?.key).toEqual(key);
      expect(kv?.value).toEqual(value);
      expect(kv?.value).toBeInstanceOf(Uint8Array);
    }
    const listed = await connect([jsonMember.url]).range(key.subarray(0, 4));
    expect(listed.kvs[0].key).toEqual(key);
  });

  it('round-trips any key and value bytes (property)', async () => {
    const store = new FakeStore();
    const client = connect([(await startMember(store)).url]);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.uint8Array({ maxLength: 200 }), async (key, value) => {
        await client.put(key, value);
        const kv = await client.get(key);
        expect(kv?.key).toEqual(key);
        expect(kv?.value).toEqual(value);
      }),
      { numRuns: 60 },
    );
  });

  it('sends a txn as one revision and decodes its answer', async () => {
    const store = new FakeStore();
    const client = connect([(await startMember(store)).url]);
    const result = await client.txn({ success: [{ put: { key: 't/a', value: 'A' } }, { put: { key: Uint8Array.of(0xfe), value: Uint8Array.of(1) } }] });
    expect(result.succeeded).toBe(true);
    expect(result.responses).toEqual([{ put: {} }, { put: {} }]);
    expect(store.history.at(-1)?.events.map((e) => Buffer.from(e.kv.key))).toEqual([Buffer.from('t/a'), Buffer.of(0xfe)]);
  });

  it('decodes status', async () => {
    const client = connect([(await startMember(new FakeStore())).url]);
    expect(await client.status()).toMatchObject({ memberId: '000000000000000a', leaderId: '000000000000000a', revision: 1, isLearner: false });
  });

  it('refuses an empty key before sending anything', async () => {
    const member = await startMember(new FakeStore());
    const client = connect([member.url]);
    const error = await client.put('', 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: 'InvalidArgument', status: 0 });
    expect(member.requests).toHaveLength(0);
  });
});

describe('typed errors from error bodies', () => {
  it('maps each code to its class, with status and details', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    const client = connect([member.url], { timeoutMs: 300 });
    let answer: { status: number; body: unknown } | undefined;
    member.misbehave = () => (answer ? { kind: 'respond', ...answer } : undefined);

    answer = { status: 404, body: { error: { code: 'KeyNotFound', message: 'no such lease' } } };
    await expect(client.leaseInfo(7)).rejects.toMatchObject({ constructor: KeyNotFoundError, status: 404, message: 'no such lease' });

    answer = { status: 410, body: { error: { code: 'Compacted', message: 'gone', compactRevision: 7 } } };
    const compacted = await client.range('a', { revision: 2 }).catch((e: unknown) => e);
    expect(compacted).toBeInstanceOf(CompactedError);
    expect(compacted).toMatchObject({ compactRevision: 7, status: 410 });

    answer = { status: 400, body: { error: { code: 'InvalidArgument', message: 'bad' } } };
    await expect(client.get('k')).rejects.toBeInstanceOf(InvalidArgumentError);

    answer = { status: 500, body: { error: { code: 'Internal', message: 'internal error' } } };
    await expect(client.get('k')).rejects.toMatchObject({ constructor: InternalError, status: 500, serverCode: 'Internal' });

    answer = { status: 504, body: { error: { code: 'Timeout', message: 'proposal timed out' } } };
    const before = puts(member);
    const timeout = await client.put('k', 'v').catch((e: unknown) => e);
    expect(timeout).toBeInstanceOf(TimeoutError);
    expect(timeout).toMatchObject({ status: 504, outcomeUnknown: true });
    expect(puts(member) - before).toBe(1); // a write with an unknown outcome is never retried

    answer = { status: 503, body: { error: { code: 'Unavailable', message: 'no leader' } } };
    const unavailable = await client.put('k', 'v').catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(UnavailableError);
    expect(unavailable).toMatchObject({ status: 503, message: 'no leader', outcomeUnknown: false });
  });

  it('gives CompareFailedError the key-value as it is now', async () => {
    const store = new FakeStore();
    const client = connect([(await startMember(store)).url]);
    await client.put('lock', 'me');
    const error = await client.put('lock', 'you', { ifVersion: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompareFailedError);
    expect((error as CompareFailedError).status).toBe(412);
    expect((error as CompareFailedError).kv?.text()).toBe('me');
    expect((error as CompareFailedError).kv?.version).toBe(1);
    const absent = await client.put('free', 'x', { ifVersion: 3 }).catch((e: unknown) => e);
    expect((absent as CompareFailedError).kv).toBeUndefined();
  });

  it('falls back to the status when the error body is unreadable, but never reads a bare 404 as a missing key', async () => {
    const member = await startMember(new FakeStore());
    const client = connect([member.url]);
    member.misbehave = () => ({ kind: 'respond', status: 413, body: 'not an error object' });
    await expect(client.put('k', 'v')).rejects.toMatchObject({ code: 'TooLarge', status: 413 });
    member.misbehave = () => ({ kind: 'respond', status: 404, body: { message: 'Route GET:/v1/kv/k not found', error: 'Not Found' } });
    await expect(client.get('k')).rejects.toMatchObject({ code: 'Internal', status: 404 });
  });
});

describe('failover', () => {
  it('goes to the second endpoint when the first refuses connections, for reads and writes', async () => {
    const store = new FakeStore();
    const live = await startMember(store);
    const client = connect([`http://127.0.0.1:${await deadPort()}`, live.url]);
    await client.put('k', 'v');
    expect((await client.get('k'))?.text()).toBe('v');
    expect(puts(live)).toBe(1);
    expect(gets(live)).toBe(1);
  });

  it('moves on after 503 and then keeps using the healthy endpoint', async () => {
    const store = new FakeStore();
    const sick = await startMember(store);
    const healthy = await startMember(store);
    sick.misbehave = () => ({ kind: 'respond', status: 503, body: { error: { code: 'Unavailable', message: 'no leader' } } });
    const client = connect([sick.url, healthy.url]);
    await client.put('k', 'v'); // 503 means nothing happened: a write may go elsewhere
    await client.get('k');
    await client.get('k');
    expect(sick.requests).toHaveLength(1);
    expect(puts(healthy)).toBe(1);
    expect(gets(healthy)).toBe(2);
  });

  it('reports a write whose connection dropped after sending as unknown, and does not retry it', async () => {
    const store = new FakeStore();
    const dropping = await startMember(store);
    const other = await startMember(store);
    dropping.misbehave = (r) => (r.method === 'PUT' ? { kind: 'drop' } : undefined);
    const client = connect([dropping.url, other.url]);
    const error = await client.put('k', 'v').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ outcomeUnknown: true, status: 0 });
    expect(puts(dropping)).toBe(1);
    expect(puts(other)).toBe(0);
  });

  it('retries a read whose connection dropped on the next endpoint', async () => {
    const store = new FakeStore();
    store.put('k', 'v');
    const dropping = await startMember(store);
    const other = await startMember(store);
    dropping.misbehave = () => ({ kind: 'drop' });
    const client = connect([dropping.url, other.url]);
    expect((await client.get('k'))?.text()).toBe('v');
    expect(gets(dropping)).toBe(1);
    expect(gets(other)).toBe(1);
  });

  it('says ConnectionError (nothing reached a server) when no endpoint answers', async () => {
    const client = connect([`http://127.0.0.1:${await deadPort()}`, `http://127.0.0.1:${await deadPort()}`], { timeoutMs: 300 });
    const started = Date.now();
    const error = await client.put('k', 'v').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error).toMatchObject({ status: 0, outcomeUnknown: false });
    expect((error as ConnectionError).causes).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(client.get('k')).rejects.toBeInstanceOf(ConnectionError);
  });
});

describe('snapshot', () => {
  it('streams the backup, and says when the stream broke', async () => {
    const member = await startMember(new FakeStore());
    member.snapshotBytes = Uint8Array.from({ length: 300_000 }, (_, i) => i % 251);
    const client = connect([`http://127.0.0.1:${await deadPort()}`, member.url]);
    const chunks: Uint8Array[] = [];
    for await (const chunk of client.snapshot()) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(member.snapshotBytes)).toBe(true); // (toEqual walks 300k elements slowly)

    member.snapshotBreakAfter = 1000;
    const broken = (async () => {
      for await (const chunk of client.snapshot()) void chunk;
    })();
    await expect(broken).rejects.toBeInstanceOf(ConnectionError);
  });
});

describe('deadlines and aborts', () => {
  it('honours the deadline on a member that never answers', async () => {
    const member = await startMember(new FakeStore());
    member.misbehave = () => ({ kind: 'hang' });
    const client = connect([member.url], { timeoutMs: 250 });
    let started = Date.now();
    const read = await client.get('k').catch((e: unknown) => e);
    expect(read).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
    expect(Date.now() - started).toBeLessThan(1500);
    started = Date.now();
    const write = await client.put('k', 'v', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(write).toBeInstanceOf(TimeoutError);
    expect(write).toMatchObject({ outcomeUnknown: true });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(puts(member)).toBe(1);
  });

  it('rejects with AbortedError when the signal fires, saying whether a write may have happened', async () => {
    const member = await startMember(new FakeStore());
    member.misbehave = () => ({ kind: 'hang' });
    const client = connect([member.url], { timeoutMs: 10_000 });
    const controller = new AbortController();
    const write = client.put('k', 'v', { signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(() => member.requests.length === 1, 'the member to receive the put');
    controller.abort();
    const error = await write;
    expect(error).toBeInstanceOf(AbortedError);
    expect(error).toMatchObject({ name: 'AbortError', outcomeUnknown: true });
    const already = await client.get('k', { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(already).toMatchObject({ name: 'AbortError', outcomeUnknown: false });
  });

  it('refuses calls after close()', async () => {
    const member = await startMember(new FakeStore());
    const client = connect([member.url]);
    await client.put('k', 'v');
    await client.close();
    await expect(client.get('k')).rejects.toBeInstanceOf(ClientClosedError);
    expect(() => client.watch('k')).toThrow(ClientClosedError);
  });
});
