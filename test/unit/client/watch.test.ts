import { afterEach, describe, expect, it } from 'vitest';
import { Client, CompactedError, type ClientOptions, type WatchBatch, type WatchOptions } from '../../../src/client/index.js';
import { deadPort, FakeMember, FakeStore, waitFor } from './fake-cluster.js';

// Watches against fake members whose streams are killed, closed and split:
// every revision arrives once, in order, whatever happens to the connection.

const members: FakeMember[] = [];
const clients: Client[] = [];
const controllers: AbortController[] = [];

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

/** Consumes a watch in the background, keeping what it yields. */
function follow(client: Client, key: string, options: Omit<WatchOptions, 'signal'> = {}) {
  const controller = new AbortController();
  controllers.push(controller);
  const batches: WatchBatch[] = [];
  const done = (async () => {
    for await (const batch of client.watch(key, { ...options, signal: controller.signal })) batches.push(batch);
  })();
  done.catch(() => undefined); // inspected by the tests that expect an error
  const changes = () => batches.filter((b) => !b.progress);
  return {
    batches,
    done,
    stop: () => controller.abort(),
    revisions: () => changes().map((b) => b.revision),
    values: () => changes().flatMap((b) => b.events.map((e) => e.kv.text())),
  };
}

const watchRequests = (m: FakeMember) => m.requests.filter((r) => r.url.startsWith('/v1/watch/'));

afterEach(async () => {
  for (const c of controllers.splice(0)) c.abort();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(members.splice(0).map((m) => m.close()));
});

describe('watch', () => {
  it('yields the events of one revision as one batch, keys and values as bytes', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    const w = follow(connect([member.url]), 'w/', { prefix: true, startRevision: 1, prevKv: true });
    store.put('w/a', 'one');
    store.write([{ put: { key: 'w/a', value: Uint8Array.of(0xff, 0) } }, { put: { key: 'w/b', value: 'two' } }]);
    store.write([{ delete: { key: 'w/b' } }]);
    store.put('elsewhere', 'x');
    await waitFor(() => w.revisions().length === 3, 'three revisions');
    const [first, second, third] = w.batches.filter((b) => !b.progress);
    expect(first).toMatchObject({ revision: 2, progress: false });
    expect(second.revision).toBe(3);
    expect(second.events.map((e) => e.kv.keyText())).toEqual(['w/a', 'w/b']);
    expect(second.events[0].kv.value).toEqual(Uint8Array.of(0xff, 0));
    expect(second.events[0].prevKv?.text()).toBe('one');
    expect(third.events).toMatchObject([{ type: 'delete' }]);
    expect(third.events[0].kv.keyText()).toBe('w/b');
  });

  it('resumes after the member kills the stream, with no revision missed or repeated', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    const w = follow(connect([member.url]), 'k', { prefix: true, startRevision: 1 });
    for (let i = 0; i < 3; i++) store.put(`k${i}`, `v${i}`);
    await waitFor(() => w.revisions().length === 3, 'the first three revisions');
    member.killWatches();
    for (let i = 3; i < 6; i++) store.put(`k${i}`, `v${i}`);
    await waitFor(() => w.revisions().length === 6, 'all six revisions');
    // A progress notice proves revision 7 complete, so the next resume is right after it.
    member.progress();
    await waitFor(() => w.batches.at(-1)?.progress === true, 'the progress notice');
    member.killWatches();
    store.put('k6', 'v6');
    await waitFor(() => w.revisions().length === 7, 'seven revisions');
    expect(w.revisions()).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(w.values()).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6']);
    // Nothing after revision 4 proved it complete when the first stream died: the
    // client resumed from the revision before it and skipped what it had delivered.
    expect(watchRequests(member).map((r) => r.headers['last-event-id'])).toEqual(['0', '3', '7']);
  });

  it('resumes on the next endpoint when its member dies mid-stream', async () => {
    const store = new FakeStore();
    const first = await startMember(store);
    const second = await startMember(store);
    const w = follow(connect([`http://127.0.0.1:${await deadPort()}`, first.url, second.url]), 'k', { prefix: true, startRevision: 1 });
    store.put('k1', 'a');
    store.put('k2', 'b');
    await waitFor(() => w.revisions().length === 2, 'two revisions');
    await first.close();
    store.put('k3', 'c');
    store.put('k4', 'd');
    await waitFor(() => w.revisions().length === 4, 'four revisions');
    expect(w.revisions()).toEqual([2, 3, 4, 5]);
    expect(watchRequests(second).at(0)?.headers['last-event-id']).toBe('2'); // revision 3 not proven complete: resent, skipped
  });

  it('begins after the current revision without startRevision, and a reconnect before any event misses nothing', async () => {
    const store = new FakeStore();
    store.put('k', 'old');
    const member = await startMember(store);
    const w = follow(connect([member.url]), 'k');
    await waitFor(() => member.watchCount === 1, 'the watch to connect');
    member.killWatches();
    store.put('k', 'new'); // written while no stream is open
    await waitFor(() => w.values().length === 1, 'the new value');
    expect(w.values()).toEqual(['new']);
    expect(w.revisions()).toEqual([3]);
  });

  it('delivers the rest of a revision split across writes once, on the same connection or after a reconnect', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    member.splitRevisions = true;
    const w = follow(connect([member.url]), 't/', { prefix: true, startRevision: 1 });
    const keys = () => w.batches.flatMap((b) => b.events.map((e) => e.kv.keyText()));

    store.write([{ put: { key: 't/a', value: '1' } }, { put: { key: 't/b', value: '2' } }, { put: { key: 't/c', value: '3' } }]);
    await waitFor(() => keys().length === 1 && member.splitWaiting, 'the first event of revision 2');
    member.releaseSplit(); // the rest follows on the same connection
    await waitFor(() => keys().length === 3, 'the rest of revision 2');
    expect(w.revisions()).toEqual([2, 2]);

    store.write([{ put: { key: 't/d', value: '4' } }, { put: { key: 't/e', value: '5' } }, { put: { key: 't/f', value: '6' } }]);
    await waitFor(() => keys().length === 4 && member.splitWaiting, 'the first event of revision 3');
    member.splitRevisions = false;
    member.killWatches(); // lost mid-revision: resume from revision 2, skip what was delivered
    await waitFor(() => keys().length === 6, 'the rest of revision 3');
    store.put('t/g', '7');
    await waitFor(() => keys().length === 7, 'revision 4');
    expect(keys()).toEqual(['t/a', 't/b', 't/c', 't/d', 't/e', 't/f', 't/g']);
    expect(w.revisions()).toEqual([2, 2, 3, 3, 4]);
    expect(watchRequests(member).at(-1)?.headers['last-event-id']).toBe('2');
  });

  it('drops events it already delivered even when a member replays them', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    member.ignoreLastEventId = true;
    const w = follow(connect([member.url]), 'k', { prefix: true, startRevision: 1 });
    store.put('k1', 'a');
    store.put('k2', 'b');
    await waitFor(() => w.revisions().length === 2, 'two revisions');
    member.killWatches();
    store.put('k3', 'c');
    await waitFor(() => w.revisions().length === 3, 'three revisions');
    await waitFor(() => watchRequests(member).length === 2 && member.watchCount === 1, 'the replaying stream');
    expect(w.revisions()).toEqual([2, 3, 4]);
  });

  it('passes progress notices on as batches without events', async () => {
    const store = new FakeStore();
    store.put('x', '1');
    const member = await startMember(store);
    const w = follow(connect([member.url]), 'k', { startRevision: 3 });
    await waitFor(() => member.watchCount === 1, 'the watch to connect');
    member.progress();
    await waitFor(() => w.batches.length === 1, 'the progress notice');
    expect(w.batches[0]).toEqual({ revision: 2, events: [], progress: true });
  });

  it('throws CompactedError when the history it needs is gone', async () => {
    const store = new FakeStore();
    for (let i = 0; i < 5; i++) store.put('k', `v${i}`);
    store.compact(5);
    const member = await startMember(store);
    const w = follow(connect([member.url]), 'k', { startRevision: 2 });
    const error = await w.done.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompactedError);
    expect((error as CompactedError).compactRevision).toBe(5);
  });

  it('ends cleanly when the signal aborts, and closes its connection', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    const w = follow(connect([member.url]), 'k', { startRevision: 1 });
    await waitFor(() => member.watchCount === 1, 'the watch to connect');
    w.stop();
    await expect(w.done).resolves.toBeUndefined();
    await waitFor(() => member.watchCount === 0, 'the member to see the stream closed');
  });

  it('ends cleanly when the loop breaks, and closes its connection', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    const client = connect([member.url]);
    store.put('k', 'a');
    for await (const batch of client.watch('k', { startRevision: 1 })) {
      expect(batch.revision).toBe(2);
      break;
    }
    await waitFor(() => member.watchCount === 0, 'the member to see the stream closed');
  });

  it('ends when the client closes', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    const client = connect([member.url]);
    const w = follow(client, 'k', { startRevision: 1 });
    await waitFor(() => member.watchCount === 1, 'the watch to connect');
    await client.close();
    await expect(w.done).resolves.toBeUndefined();
  });

  it('treats a silent stream as lost and resumes it', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    const w = follow(connect([member.url], { watchIdleTimeoutMs: 100 }), 'k', { startRevision: 1 });
    await waitFor(() => watchRequests(member).length >= 2, 'a reconnect after the silence');
    store.put('k', 'a');
    await waitFor(() => w.revisions().length === 1, 'the event');
    expect(w.revisions()).toEqual([2]);
  });

  it('keeps trying while no member is reachable, and catches up once one is', async () => {
    const store = new FakeStore();
    const member = await startMember(store);
    member.misbehave = (r) => (r.url.startsWith('/v1/watch/') ? { kind: 'respond', status: 503, body: { error: { code: 'Unavailable', message: 'not ready' } } } : undefined);
    const w = follow(connect([member.url], { timeoutMs: 200 }), 'k', { startRevision: 1 });
    store.put('k', 'a');
    await waitFor(() => watchRequests(member).length >= 3, 'a few refused attempts');
    member.misbehave = undefined;
    await waitFor(() => w.revisions().length === 1, 'the event after recovery');
    expect(w.revisions()).toEqual([2]);
  });
});
