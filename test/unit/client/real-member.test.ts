import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, CompactedError, compare, op, CompareFailedError, KeyNotFoundError, type WatchBatch } from '../../../src/client/index.js';
import type { RunningMember } from '../../../src/server/member.js';
import { startSoloMember, type SoloMember } from '../../support/solo-member.js';

// The client against a real one-member stack (LevelDB, Raft, MVCC, SSE watch)
// listening on a real port: the fake members of the other tests are only as
// good as their likeness to this.

describe('client against a real member', () => {
  let member: RunningMember;
  let client: Client;

  let solo: SoloMember;

  beforeAll(async () => {
    solo = await startSoloMember();
    member = solo.member;
    const url = await member.clientApp.listen({ host: '127.0.0.1', port: 0 });
    client = new Client({ endpoints: [url], timeoutMs: 5000 });
  });
  afterAll(async () => {
    await client?.close();
    await solo?.close();
  });

  it('round-trips text and binary keys and values, ranges and deletes', async () => {
    const key = Uint8Array.from([...Buffer.from('bin/a b/%/'), 0xff, 0x00]);
    const value = Uint8Array.of(0, 255, 1);
    const put = await client.put(key, value);
    const kv = await client.get(key);
    expect(kv?.key).toEqual(key);
    expect(kv?.value).toEqual(value);
    expect(kv?.modRevision).toBe(put.header.revision);
    await client.put('bin/text', 'hello');
    expect((await client.get('bin/text'))?.text()).toBe('hello');
    expect(await client.get('bin/none')).toBeNull();
    const range = await client.range('bin/');
    expect(range.count).toBe(2);
    const deleted = await client.delete('bin/', { prefix: true, prevKv: true });
    expect(deleted.deleted).toBe(2);
    expect(deleted.prevKvs?.map((k) => k.key)).toContainEqual(key);
  });

  it('sends a txn with bytes (msgpack body) and sees CompareFailed with the kv', async () => {
    const t = await client.txn({
      compare: [{ key: 't/x', target: 'version', op: '=', value: 0 }],
      success: [{ put: { key: 't/x', value: Uint8Array.of(0xfe) } }, { put: { key: 't/y', value: 'y' } }, { get: { key: 't/', prefix: true } }],
    });
    expect(t.succeeded).toBe(true);
    const got = t.responses[2];
    expect('get' in got && got.get.kvs.map((k) => k.keyText())).toEqual(['t/x', 't/y']);
    expect((await client.get('t/x'))?.value).toEqual(Uint8Array.of(0xfe));
    const error = await client.put('t/x', 'z', { ifVersion: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompareFailedError);
    expect((error as CompareFailedError).kv?.value).toEqual(Uint8Array.of(0xfe));
  });

  it('builds a transaction fluently: if / then / else, committed once', async () => {
    const takeLock = () => client.transaction().if(compare.version('b/lock', '=', 0)).then(op.put('b/lock', 'me')).else(op.get('b/lock'));
    const first = await takeLock().commit();
    expect(first.succeeded).toBe(true);
    const second = await takeLock().commit();
    expect(second.succeeded).toBe(false);
    const held = second.responses[0];
    expect('get' in held && held.get.kvs.map((kv) => kv.text())).toEqual(['me']);
    const builder = client.transaction().then(op.delete('b/', { prefix: true }));
    expect(builder.build()).toEqual({ compare: [], success: [{ delete: { key: 'b/', prefix: true } }], failure: [] });
    expect((await builder.commit()).succeeded).toBe(true);
    expect(await client.get('b/lock')).toBeNull();
    await expect(builder.commit()).rejects.toThrow(/already committed/);
  });

  it('grants, inspects, keeps alive and revokes a lease', async () => {
    const lease = await client.grantLease(60);
    await client.put('leased', 'v', { lease: lease.id });
    const info = await client.leaseInfo(lease.id);
    expect(info).toMatchObject({ id: lease.id, grantedTtl: 60 });
    expect(info.keys.map((k) => Buffer.from(k).toString())).toEqual(['leased']);
    expect((await client.keepAlive(lease.id)).ttl).toBeGreaterThan(0);
    expect(await client.leases()).toContain(lease.id);
    await client.revokeLease(lease.id);
    expect(await client.get('leased')).toBeNull();
  });

  it('keeps a lease alive in the background past its TTL, until closed; reports a revoked lease', async () => {
    const lease = await client.grantLease(1);
    await client.put('kept', 'v', { lease: lease.id });
    const keeper = client.keepLeaseAlive(lease.id);
    // Three TTLs later the key is still there: the keep-alives got through.
    const until = performance.now() + 3000;
    while (performance.now() < until) {
      expect(await client.get('kept'), 'the key of a kept-alive lease').not.toBeNull();
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(keeper.ttl).toBe(1);
    await keeper.close();
    await expect(keeper.done).resolves.toBeUndefined();
    // Once closed, the lease lapses and takes its key with it.
    const deadline = performance.now() + 5000;
    while ((await client.get('kept')) !== null && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await client.get('kept')).toBeNull();
    const second = await client.grantLease(60);
    const watcher = client.keepLeaseAlive(second.id, { maxIntervalMs: 50 });
    await client.revokeLease(second.id);
    await expect(watcher.done).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('reads status and members', async () => {
    const status = await client.status();
    expect(status).toMatchObject({ name: 'solo', memberId: member.id, leaderId: member.id });
    const members = await client.members();
    expect(members.map((m) => m.id)).toEqual([member.id]);
  });

  it('watches changes grouped by revision, from a start revision', async () => {
    const start = (await client.put('w/a', '1')).header.revision;
    await client.txn({ success: [{ put: { key: 'w/b', value: '2' } }, { put: { key: 'w/c', value: Uint8Array.of(0xff) } }] });
    const batches: WatchBatch[] = [];
    for await (const batch of client.watch('w/', { prefix: true, startRevision: start })) {
      if (!batch.progress) batches.push(batch);
      if (batches.length === 2) break;
    }
    expect(batches.map((b) => b.revision)).toEqual([start, start + 1]);
    expect(batches[1].events.map((e) => e.kv.keyText())).toEqual(['w/b', 'w/c']);
    expect(batches[1].events[1].kv.value).toEqual(Uint8Array.of(0xff));
  });

  it('reports compaction to reads and watches', async () => {
    const old = (await client.put('c', '1')).header.revision;
    const now = (await client.put('c', '2')).header.revision;
    await client.compact(now);
    await expect(client.get('c', { revision: old })).rejects.toBeInstanceOf(CompactedError);
    const watching = (async () => {
      for await (const batch of client.watch('c', { startRevision: old })) void batch;
    })();
    await expect(watching).rejects.toMatchObject({ constructor: CompactedError, compactRevision: now });
  });
});
