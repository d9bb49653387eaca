import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeId, type Entry } from '../../../src/raft/index.js';
import { openMemberDb, sublevel, type MemberDb } from '../../../src/storage/member-db.js';
import { CorruptDataError, RaftStore, logKey } from '../../../src/storage/raft-store.js';

const entry = (index: number, term: number, text = `e${index}`): Entry => ({
  index,
  term,
  type: 'normal',
  data: new TextEncoder().encode(text),
});
const a = nodeId('a');

describe('RaftStore on LevelDB', () => {
  let dir: string;
  let db: MemberDb;
  let stores: RaftStore[] = [];

  /** Opens a store on the current db; every store is closed before its db. */
  async function openStore(): Promise<RaftStore> {
    const store = await RaftStore.open(db);
    stores.push(store);
    return store;
  }

  async function closeStores(): Promise<void> {
    await Promise.all(stores.map((s) => s.close()));
    stores = [];
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-raft-store-'));
    db = await openMemberDb(dir);
  });
  afterEach(async () => {
    await closeStores();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function reopen(): Promise<RaftStore> {
    await closeStores();
    await db.close();
    db = await openMemberDb(dir);
    return openStore();
  }

  it('starts empty, and reads back entries and hard state after a reopen', async () => {
    const store = await openStore();
    expect(store.isEmpty()).toBe(true);
    await store.persist({ hardState: { term: 2, vote: a, commit: 2 }, entries: [entry(1, 1), entry(2, 2), entry(3, 2)] });
    const again = await reopen();
    expect(again.memory.lastIndex()).toBe(3);
    expect(again.memory.entries(1, 4, Infinity).map((e) => new TextDecoder().decode(e.data))).toEqual(['e1', 'e2', 'e3']);
    expect(again.memory.initialState().hardState).toEqual({ term: 2, vote: a, commit: 2 });
  });

  it('an overwritten tail is deleted on disk too', async () => {
    const store = await openStore();
    await store.persist({ entries: [entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)] });
    await store.persist({ entries: [entry(3, 2, 'new3')] });
    const again = await reopen();
    expect(again.memory.lastIndex()).toBe(3);
    expect(new TextDecoder().decode(again.memory.entries(3, 4, Infinity)[0].data)).toBe('new3');
  });

  it('a snapshot drops the log below it and survives a reopen', async () => {
    const store = await openStore();
    const entries = Array.from({ length: 20 }, (_, i) => entry(i + 1, 1));
    await store.persist({ hardState: { term: 1, vote: a, commit: 20 }, entries });
    await store.createSnapshot(15, { voters: [a], learners: [] }, 11);
    expect(store.memory.firstIndex()).toBe(11);
    await store.close();
    const keys: Uint8Array[] = [];
    for await (const k of sublevel(db, 'raft-log').keys()) keys.push(k);
    expect(keys).toHaveLength(10); // 11..20 kept
    // After a restart the log starts right after the snapshot (the kept entries go).
    const again = await reopen();
    expect(again.memory.snapshot().metadata.index).toBe(15);
    expect(again.memory.firstIndex()).toBe(16);
    expect(again.memory.lastIndex()).toBe(20);
    await again.close();
    const left: Uint8Array[] = [];
    for await (const k of sublevel(db, 'raft-log').keys()) left.push(k);
    expect(left).toHaveLength(5);
  });

  it('refuses to start on a log with a gap', async () => {
    const store = await openStore();
    await store.persist({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
    await sublevel(db, 'raft-log').del(logKey(2));
    await expect(reopen()).rejects.toThrow(CorruptDataError);
  });

  it('refuses to start when the commit index is past the log (a truncated log)', async () => {
    const store = await openStore();
    await store.persist({ hardState: { term: 1, vote: a, commit: 3 }, entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
    await sublevel(db, 'raft-log').del(logKey(3));
    await expect(reopen()).rejects.toThrow(/past the last log entry/);
  });
});
