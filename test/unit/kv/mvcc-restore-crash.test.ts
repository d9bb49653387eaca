import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeCommand, type KvCommand } from '../../../src/kv/kv-commands.js';
import { MvccStore } from '../../../src/kv/mvcc.js';
import { openMemberDb, sublevel, type MemberDb } from '../../../src/storage/member-db.js';

// Regression (commit 965be29): restoring a snapshot image must be crash-safe. Before
// the fix, restore() cleared the store's sections and wrote the image in several
// LevelDB writes; a member killed in between restarted on an empty or half-written
// store. Here a "kill" is simulated at every write restore() makes: that write and
// every later one fail (LevelDB applies each write or batch whole or not at all,
// so what is on disk is exactly what a kill at that point leaves). Reopened, the
// database must hold the complete old state or the complete new state, nothing else.

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const CARRIED = 'members';

/** Every key and value in the database, all sections, in key order. */
async function dump(db: MemberDb): Promise<string[]> {
  const rows: string[] = [];
  for await (const [key, value] of db.iterator()) rows.push(`${Buffer.from(key).toString('hex')}=${Buffer.from(value).toString('hex')}`);
  return rows;
}

type WriteMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * Lets `allowed` writes through to the database, then fails that write and every
 * later one, as if the process had died there. Counts the writes attempted.
 * Sublevel writes all end in the root database's _put/_del/_batch/_clear.
 */
function killAfterWrites(db: MemberDb, allowed: number): { readonly attempted: () => number } {
  let attempted = 0;
  const methods = db as unknown as Record<string, WriteMethod>;
  for (const name of ['_put', '_del', '_batch', '_clear']) {
    const original = methods[name].bind(db);
    methods[name] = async (...args: unknown[]) => {
      attempted++;
      if (attempted > allowed) throw new Error(`simulated kill at write ${attempted}`);
      return original(...args);
    };
  }
  methods._chainedBatch = () => {
    throw new Error('a chained batch: this test counts only put/del/batch/clear writes');
  };
  return { attempted: () => attempted };
}

describe('MvccStore.restore killed part way', () => {
  const dirs: string[] = [];
  const open: MemberDb[] = [];

  async function openDb(dir?: string): Promise<{ db: MemberDb; dir: string }> {
    const d = dir ?? (await mkdtemp(join(tmpdir(), 'cairn-restore-crash-')));
    if (!dir) dirs.push(d);
    const db = await openMemberDb(d);
    open.push(db);
    return { db, dir: d };
  }

  async function closeDb(db: MemberDb): Promise<void> {
    open.splice(open.indexOf(db), 1);
    await db.close();
  }

  afterEach(async () => {
    for (const db of open.splice(0)) await db.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function run(store: MvccStore, commands: readonly KvCommand[]): Promise<void> {
    let index = store.appliedIndex;
    for (const c of commands) await store.apply([{ index: ++index, command: encodeCommand(c) }]);
  }

  /** The state a member had before the snapshot arrived: its own keys, history, a lease and a member list. */
  async function openOldState(): Promise<{ db: MemberDb; dir: string; store: MvccStore }> {
    const { db, dir } = await openDb();
    await sublevel(db, CARRIED).put(b('member-old'), b('old peer list'));
    const store = await MvccStore.open(db, { carrySections: [CARRIED] });
    await run(store, [
      { op: 'leaseGrant', id: 3, ttlSeconds: 60 },
      { op: 'put', key: b('old/a'), value: b('1') },
      { op: 'put', key: b('old/b'), value: b('2'), lease: 3 },
      { op: 'put', key: b('old/a'), value: b('3') },
      { op: 'delete', key: b('old/b') },
    ]);
    return { db, dir, store };
  }

  it('leaves the old state whole or the new state whole, at every point a kill can hit', async () => {
    // The image: a different store (more keys, more history, another lease, another member list).
    const { db: sourceDb } = await openDb();
    await sublevel(sourceDb, CARRIED).put(b('member-new'), b('new peer list'));
    const source = await MvccStore.open(sourceDb, { carrySections: [CARRIED] });
    const commands: KvCommand[] = [{ op: 'leaseGrant', id: 7, ttlSeconds: 30 }];
    for (let i = 0; i < 40; i++) commands.push({ op: 'put', key: b(`new/${i % 9}`), value: b(`value-${i}`), lease: i % 4 === 0 ? 7 : undefined });
    commands.push({ op: 'delete', key: b('new/3') });
    await run(source, commands);
    const image: Uint8Array[] = [];
    for await (const chunk of source.snapshot()) image.push(Uint8Array.from(chunk));
    const replay = async function* (): AsyncIterable<Uint8Array> {
      yield* image;
    };

    // Reference: the restore run to its end, counting the writes it makes.
    const reference = await openOldState();
    const oldDump = await dump(reference.db);
    const oldHash = reference.store.hash();
    const counter = killAfterWrites(reference.db, Number.POSITIVE_INFINITY);
    await reference.store.restore(replay());
    const writes = counter.attempted();
    expect(reference.store.hash()).toBe(source.hash());
    expect(reference.store.appliedIndex).toBe(source.appliedIndex);
    await reference.store.close();
    const newDump = await dump(reference.db);
    const newHash = reference.store.hash();
    expect(newDump).not.toEqual(oldDump);
    expect(writes).toBeGreaterThan(0);

    for (let allowed = 0; allowed < writes; allowed++) {
      const victim = await openOldState();
      expect(await dump(victim.db), 'the old state is built the same way every time').toEqual(oldDump);
      killAfterWrites(victim.db, allowed);
      const restoring = victim.store.restore(replay());
      // restore() keeps a copy of its promise for reads to wait on; nothing reads here, and
      // without a handler that copy's rejection would be reported as unhandled.
      (victim.store as unknown as { restoring?: Promise<void> }).restoring?.catch(() => undefined);
      await expect(restoring).rejects.toThrow(/simulated kill/);
      await victim.store.close();
      await closeDb(victim.db);

      // Restart: a new process opens the database as the kill left it.
      const { db } = await openDb(victim.dir);
      const onDisk = await dump(db);
      const reopened = await MvccStore.open(db, { carrySections: [CARRIED] });
      const what = `killed after ${allowed} of ${writes} writes: revision ${reopened.revision}, applied index ${reopened.appliedIndex}, ${onDisk.length} rows`;
      const whole = onDisk.join('\n') === oldDump.join('\n') ? 'the old state' : onDisk.join('\n') === newDump.join('\n') ? 'the new state' : 'neither (a mix)';
      expect(['the old state', 'the new state'], what).toContain(whole);
      expect(reopened.hash(), what).toBe(whole === 'the old state' ? oldHash : newHash);
      await reopened.close();
      await closeDb(db);
    }
  });
});
