import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeCommand, type KvCommand, type KvResult } from '../../../src/kv/kv-commands.js';
import { MvccStore, RangeReadError } from '../../../src/kv/mvcc.js';
import { WatchHub, type WatchNotice } from '../../../src/kv/watch-hub.js';
import { openMemberDb, type MemberDb } from '../../../src/storage/member-db.js';

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const t = (u: Uint8Array): string => new TextDecoder().decode(u);

describe('MvccStore', () => {
  let dirs: string[] = [];
  let dbs: MemberDb[] = [];
  let stores: MvccStore[] = [];
  let index = 0;

  async function openStore(dir?: string): Promise<{ store: MvccStore; dir: string }> {
    const d = dir ?? (await mkdtemp(join(tmpdir(), 'cairn-kv-')));
    if (!dir) dirs.push(d);
    const db = await openMemberDb(d);
    dbs.push(db);
    const store = await MvccStore.open(db);
    stores.push(store);
    return { store, dir: d };
  }

  async function closeAll(): Promise<void> {
    for (const s of stores) await s.close();
    for (const db of dbs) await db.close();
    stores = [];
    dbs = [];
  }

  async function run(store: MvccStore, ...commands: KvCommand[]): Promise<KvResult[]> {
    const results = await store.apply(commands.map((c) => ({ index: ++index, command: encodeCommand(c) })));
    return results as KvResult[];
  }

  beforeEach(() => {
    index = 0;
  });
  afterEach(async () => {
    await closeAll();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    dirs = [];
  });

  it('answers results before the batch is written, and a scan started then still sees that revision', async () => {
    const { store } = await openStore();
    await run(store, { op: 'put', key: b('p/a'), value: b('1') });
    let scan: Promise<{ revision: number; keys: string[] }> | undefined;
    let history: Promise<number[]> | undefined;
    const applied = store.apply([{ index: ++index, command: encodeCommand({ op: 'put', key: b('p/b'), value: b('2') }) }], [], () => {
      // Here the revision has moved but the batch is still being written.
      expect(store.revision).toBe(2);
      scan = store.range({ key: b('p/'), prefix: true }).then((r) => ({ revision: r.revision, keys: r.kvs.map((kv) => t(kv.key)) }));
      history = store.history(1, 2, () => true, false, 10).then((rs) => rs.map((r) => r.revision));
    });
    await applied;
    expect(await scan).toEqual({ revision: 2, keys: ['p/a', 'p/b'] });
    expect(await history).toEqual([1, 2]);
  });

  it('keeps createRevision, modRevision and version as etcd does, across delete and re-create', async () => {
    const { store } = await openStore();
    await run(store, { op: 'put', key: b('a'), value: b('1') }, { op: 'put', key: b('a'), value: b('2') });
    expect(store.get(b('a'))).toMatchObject({ createRevision: 1, modRevision: 2, version: 2 });
    const [del] = await run(store, { op: 'delete', key: b('a'), prevKv: true });
    expect(del).toMatchObject({ op: 'delete', revision: 3, deleted: 1 });
    expect(store.get(b('a'))).toBeUndefined();
    await run(store, { op: 'put', key: b('a'), value: b('3') });
    expect(store.get(b('a'))).toMatchObject({ createRevision: 4, modRevision: 4, version: 1 });
    // A delete of nothing writes nothing and takes no revision.
    const [none] = await run(store, { op: 'delete', key: b('zz') });
    expect(none).toMatchObject({ deleted: 0, revision: 4 });
    expect(store.revision).toBe(4);
  });

  it('ranges by prefix with limit, more, count, keysOnly and countOnly', async () => {
    const { store } = await openStore();
    await run(store, ...['app/a', 'app/b', 'app/c', 'apq', 'zzz'].map((k): KvCommand => ({ op: 'put', key: b(k), value: b(`v-${k}`) })));
    const r = await store.range({ key: b('app/'), prefix: true, limit: 2 });
    expect(r.kvs.map((kv) => t(kv.key))).toEqual(['app/a', 'app/b']);
    expect(r).toMatchObject({ count: 3, more: true });
    const keysOnly = await store.range({ key: b('app/'), prefix: true, keysOnly: true });
    expect(keysOnly.kvs.every((kv) => kv.value.length === 0)).toBe(true);
    const countOnly = await store.range({ key: b(''), prefix: true, countOnly: true });
    expect(countOnly).toMatchObject({ count: 5, kvs: [] });
  });

  it('reads as of a past revision, and refuses revisions compacted away', async () => {
    const { store } = await openStore();
    await run(store, { op: 'put', key: b('k'), value: b('one') }, { op: 'put', key: b('k'), value: b('two') }, { op: 'delete', key: b('k') });
    expect((await store.range({ key: b('k'), revision: 1 })).kvs.map((kv) => t(kv.value))).toEqual(['one']);
    expect((await store.range({ key: b('k'), revision: 2 })).kvs.map((kv) => t(kv.value))).toEqual(['two']);
    expect((await store.range({ key: b('k'), revision: 3 })).kvs).toEqual([]);
    await run(store, { op: 'put', key: b('k'), value: b('three') }, { op: 'compact', revision: 3 });
    await expect(store.range({ key: b('k'), revision: 2 })).rejects.toBeInstanceOf(RangeReadError);
    const [again] = await run(store, { op: 'compact', revision: 2 });
    expect(again).toMatchObject({ error: 'Compacted', compactRevision: 3 });
    expect((await store.range({ key: b('k'), revision: 4 })).kvs.map((kv) => t(kv.value))).toEqual(['three']);
  });

  it('runs a transaction as one revision; a failed compare runs the failure branch', async () => {
    const { store } = await openStore();
    await run(store, { op: 'put', key: b('x'), value: b('1') });
    const [ok] = await run(store, {
      op: 'txn',
      compare: [{ key: b('x'), target: 'value', op: '=', value: b('1') }],
      success: [{ put: { key: b('x'), value: b('2') } }, { put: { key: b('y'), value: b('2') } }, { get: { key: b('x') } }],
      failure: [],
    });
    expect(ok).toMatchObject({ op: 'txn', succeeded: true, revision: 2 });
    expect(store.get(b('y'))).toMatchObject({ modRevision: 2 });
    const [no] = await run(store, {
      op: 'txn',
      compare: [{ key: b('x'), target: 'version', op: '>', value: 5 }],
      success: [{ delete: { key: b('x') } }],
      failure: [{ get: { key: b('x') } }],
    });
    expect(no).toMatchObject({ succeeded: false, revision: 2 });
    expect(store.revision).toBe(2);
  });

  it('ifVersion / ifModRevision: 0 means the key must not exist; a mismatch changes nothing', async () => {
    const { store } = await openStore();
    const [created] = await run(store, { op: 'put', key: b('lock'), value: b('me'), ifVersion: 0 });
    expect(created).toMatchObject({ op: 'put', revision: 1 });
    const [taken] = await run(store, { op: 'put', key: b('lock'), value: b('you'), ifVersion: 0 });
    expect(taken).toMatchObject({ error: 'CompareFailed', kv: { version: 1 } });
    const [stale] = await run(store, { op: 'delete', key: b('lock'), ifModRevision: 7 });
    expect(stale).toMatchObject({ error: 'CompareFailed' });
    expect(t(store.get(b('lock'))!.value)).toBe('me');
    expect(store.revision).toBe(1);
  });

  it('revoking a lease deletes its keys in one revision', async () => {
    const { store } = await openStore();
    await run(store, { op: 'leaseGrant', id: 42, ttlSeconds: 10 }, { op: 'put', key: b('a'), value: b('1'), lease: 42 }, { op: 'put', key: b('b'), value: b('1'), lease: 42 });
    expect(store.leaseInfo(42)?.keys.map(t)).toEqual(['a', 'b']);
    const [revoked] = await run(store, { op: 'leaseRevoke', id: 42 });
    expect(revoked).toMatchObject({ op: 'leaseRevoke', revision: 3 });
    expect(store.get(b('a'))).toBeUndefined();
    expect(store.get(b('b'))).toBeUndefined();
    const [missing] = await run(store, { op: 'put', key: b('c'), value: b('1'), lease: 42 });
    expect(missing).toMatchObject({ error: 'KeyNotFound' });
    // In a transaction too: the whole transaction fails and changes nothing (it used to drop the lease silently).
    const [txn] = await run(store, { op: 'txn', compare: [], success: [{ put: { key: b('d'), value: b('1') } }, { put: { key: b('e'), value: b('1'), lease: 42 } }], failure: [] });
    expect(txn).toMatchObject({ error: 'KeyNotFound', message: 'lease 42 not found' });
    expect(store.get(b('d'))).toBeUndefined();
    expect(store.revision).toBe(3);
  });

  it('replaying applied entries changes nothing; everything survives a reopen', async () => {
    const { store, dir } = await openStore();
    const entries = [1, 2, 3].map((i) => ({ index: i, command: encodeCommand({ op: 'put', key: b(`k${i}`), value: b(`${i}`) }) }));
    await store.apply(entries);
    const hash = store.hash();
    expect(await store.apply(entries)).toEqual([undefined, undefined, undefined]);
    expect(store.hash()).toBe(hash);
    await closeAll();
    const { store: again } = await openStore(dir);
    expect(again.hash()).toBe(hash);
    expect(again.appliedIndex).toBe(3);
  });

  it('a snapshot restored into another store gives the same state and history', async () => {
    const { store } = await openStore();
    for (let i = 0; i < 50; i++) await run(store, { op: 'put', key: b(`key-${i % 7}`), value: b(`value-${i}`) });
    await run(store, { op: 'leaseGrant', id: 9, ttlSeconds: 5 }, { op: 'compact', revision: 20 });
    const { store: other } = await openStore();
    await run(other, { op: 'put', key: b('junk'), value: b('gone after restore') });
    await other.restore(store.snapshot());
    expect(other.hash()).toBe(store.hash());
    expect(other.appliedIndex).toBe(store.appliedIndex);
    expect(other.get(b('junk'))).toBeUndefined();
    expect(other.leaseIds()).toEqual([9]);
    expect(await other.range({ key: b('key-1'), revision: 30 })).toEqual(await store.range({ key: b('key-1'), revision: 30 }));
  });

  it('matches a simple model over random puts, deletes and transactions', async () => {
    const { store } = await openStore();
    const model = new Map<string, { value: string; version: number }>();
    const key = fc.constantFrom('a', 'b', 'c', 'ab', 'b/c');
    const command = fc.oneof(
      fc.record({ op: fc.constant('put' as const), key, value: fc.string({ maxLength: 4 }) }),
      fc.record({ op: fc.constant('delete' as const), key, prefix: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 20 }), async (commands) => {
        for (const c of commands) {
          if (c.op === 'put') {
            await run(store, { op: 'put', key: b(c.key), value: b(c.value) });
            model.set(c.key, { value: c.value, version: (model.get(c.key)?.version ?? 0) + 1 });
          } else {
            await run(store, { op: 'delete', key: b(c.key), prefix: c.prefix });
            for (const k of [...model.keys()]) if (c.prefix ? k.startsWith(c.key) : k === c.key) model.delete(k);
          }
        }
        const all = await store.range({ key: b(''), prefix: true });
        const got = all.kvs.map((kv) => [t(kv.key), t(kv.value), kv.version]);
        const want = [...model.entries()].sort(([x], [y]) => (Buffer.compare(b(x), b(y)))).map(([k, v]) => [k, v.value, v.version]);
        expect(got).toEqual(want);
      }),
      { numRuns: 50 },
    );
  });
});

describe('WatchHub', () => {
  let dir: string;
  let db: MemberDb;
  let store: MvccStore;
  let hub: WatchHub;
  let index = 0;
  const put = (k: string, v: string): KvCommand => ({ op: 'put', key: b(k), value: b(v) });
  const run = (...cs: KvCommand[]) => store.apply(cs.map((c) => ({ index: ++index, command: encodeCommand(c) })));

  beforeEach(async () => {
    index = 0;
    dir = await mkdtemp(join(tmpdir(), 'cairn-watch-'));
    db = await openMemberDb(dir);
    store = await MvccStore.open(db);
    hub = new WatchHub(store, { maxQueuedNotices: 2, catchUpRevisions: 3 });
  });
  afterEach(async () => {
    hub.close();
    await store.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function take(it: AsyncIterator<WatchNotice>, n: number): Promise<WatchNotice[]> {
    const out: WatchNotice[] = [];
    while (out.length < n) {
      const r = await it.next();
      if (r.done) break;
      out.push(r.value);
    }
    return out;
  }

  const revisions = (ns: WatchNotice[]): number[] => ns.flatMap((n) => (n.kind === 'events' ? [n.revision] : []));

  it('delivers history from a past revision, then live changes, with no gap or duplicate', async () => {
    await run(put('w/a', '1'), put('other', 'x'), put('w/b', '2'));
    const controller = new AbortController();
    const it = hub.watch({ key: b('w/'), prefix: true, startRevision: 1 }, controller.signal)[Symbol.asyncIterator]();
    const first = await take(it, 2);
    await run(put('w/a', '3'), put('w/c', '4'));
    const rest = await take(it, 2);
    expect(revisions([...first, ...rest])).toEqual([1, 3, 4, 5]);
    controller.abort();
    expect((await it.next()).done).toBe(true);
  });

  it('a slow watcher past its queue bound catches up from history without losing events', async () => {
    const controller = new AbortController();
    const it = hub.watch({ key: b('s'), prefix: true }, controller.signal)[Symbol.asyncIterator]();
    const pending = it.next(); // registers the watcher
    for (let i = 0; i < 12; i++) await run(put(`s${i % 3}`, `${i}`));
    const got = [(await pending).value as WatchNotice, ...(await take(it, 11))];
    expect(revisions(got)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    controller.abort();
  });

  it('a watch from a compacted revision is told so and ends', async () => {
    await run(put('k', '1'), put('k', '2'), put('k', '3'), { op: 'compact', revision: 3 });
    const it = hub.watch({ key: b('k'), prefix: false, startRevision: 1 }, new AbortController().signal)[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ kind: 'compacted', compactRevision: 3 });
    expect((await it.next()).done).toBe(true);
  });

  it('events of one transaction arrive together; prevKv only when asked', async () => {
    await run(put('t/a', 'old'));
    const controller = new AbortController();
    const it = hub.watch({ key: b('t/'), prefix: true, prevKv: true }, controller.signal)[Symbol.asyncIterator]();
    const pending = it.next();
    await run({ op: 'txn', compare: [], success: [{ put: { key: b('t/a'), value: b('new') } }, { delete: { key: b('t/a') } }], failure: [] });
    const n = (await pending).value as WatchNotice;
    expect(n.kind).toBe('events');
    if (n.kind !== 'events') return;
    expect(n.revision).toBe(2);
    expect(n.events.map((e) => e.type)).toEqual(['put', 'delete']);
    expect(t(n.events[0].prevKv!.value)).toBe('old');
    controller.abort();
  });
});
