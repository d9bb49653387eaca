import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeId, type Entry } from '../../src/raft/index.js';
import { CorruptDataError, DAMAGE_MARKER, openMemberDb, sublevel, tableDamage, type MemberDb } from '../../src/storage/member-db.js';
import { RaftStore, SYNCED_WRITES_FILE } from '../../src/storage/raft-store.js';

// The storage checks behind the corruption test (corruption.test.ts), in
// process: each damage is made on purpose and must be refused with a
// CorruptDataError that says what and where; the undamaged copy must open.

const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: randomBytes(16) });

describe('opening damaged member data', () => {
  let dir: string;
  /** A database with tables and a log: 8 MB of incompressible rows, then Raft entries persisted in synced writes. */
  let pristine: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-storage-damage-'));
    pristine = join(dir, 'pristine');
    const db = await openMemberDb(pristine);
    const rows = sublevel(db, 'rows');
    for (let i = 0; i < 800; i++) await rows.put(new TextEncoder().encode(`row-${i}`), randomBytes(10_000));
    const store = await RaftStore.open(db);
    for (let i = 1; i <= 40; i++) await store.persist({ hardState: { term: 1, vote: nodeId('a'), commit: i }, entries: [entry(i, 1)] });
    await store.close();
    await db.close();
    const files = await readdir(pristine);
    expect(files.filter((f) => f.endsWith('.ldb')).length).toBeGreaterThan(0);
  }, 60_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function copy(name: string): Promise<string> {
    const target = join(dir, name);
    await cp(pristine, target, { recursive: true });
    return target;
  }

  /** Opens the database and the Raft store on it, as a member does; closes both. */
  async function openAll(path: string): Promise<void> {
    const db: MemberDb = await openMemberDb(path);
    try {
      const store = await RaftStore.open(db);
      await store.close();
    } finally {
      await db.close();
    }
  }

  it('opens the undamaged copy, twice', async () => {
    const path = await copy('undamaged');
    await openAll(path);
    await openAll(path);
    expect(await readFile(join(path, SYNCED_WRITES_FILE), 'utf8')).toBe('40\n');
  });

  it('a log cut short is refused: the database holds fewer synced writes than were made', async () => {
    const path = await copy('cut-log');
    const log = (await readdir(path)).filter((f) => f.endsWith('.log')).sort().at(-1)!;
    const bytes = await readFile(join(path, log));
    // Cut inside the last few Raft writes (each one synced batch near the end of the log).
    await truncate(join(path, log), bytes.length - 200);
    const attempt = openAll(path);
    await expect(attempt).rejects.toThrow(CorruptDataError);
    await expect(attempt).rejects.toThrow(/holds 3\d synced Raft writes but 40 were made.*truncated or rolled back/);
  });

  it('a flipped byte in the log is refused, and keeps being refused after LevelDB "repaired" it', async () => {
    const path = await copy('flipped-log');
    const log = (await readdir(path)).filter((f) => f.endsWith('.log')).sort().at(-1)!;
    const bytes = await readFile(join(path, log));
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(join(path, log), bytes);
    await expect(openAll(path)).rejects.toThrow(/LevelDB skipped unreadable records: .*dropping \d+ bytes/);
    expect((await readdir(path)).includes(DAMAGE_MARKER)).toBe(true);
    await expect(openAll(path)).rejects.toThrow(/LevelDB skipped unreadable records/);
  });

  it('a flipped byte in a table is found by its block checksum before LevelDB serves it', async () => {
    const path = await copy('flipped-table');
    const table = (await readdir(path)).filter((f) => f.endsWith('.ldb')).sort()[0];
    const bytes = await readFile(join(path, table));
    expect(tableDamage(bytes)).toBeUndefined();
    bytes[Math.floor(bytes.length / 3)] ^= 0x01;
    expect(tableDamage(bytes)).toMatch(/checksum mismatch in the block at byte \d+/);
    await writeFile(join(path, table), bytes);
    await expect(openAll(path)).rejects.toThrow(new RegExp(`table ${table}: checksum mismatch`));
  });

  it('a table cut short is refused', async () => {
    const path = await copy('cut-table');
    const table = (await readdir(path)).filter((f) => f.endsWith('.ldb')).sort()[0];
    await truncate(join(path, table), 1000);
    await expect(openAll(path)).rejects.toThrow(new RegExp(`table ${table}: no table footer`));
  });

  it('a missing CURRENT is refused instead of LevelDB creating a new, empty database', async () => {
    const path = await copy('no-current');
    await unlink(join(path, 'CURRENT'));
    await expect(openAll(path)).rejects.toThrow(/its CURRENT file is missing/);
  });

  it('a MANIFEST LevelDB cannot read is refused with LevelDB\'s reason, not "Database failed to open"', async () => {
    const path = await copy('bad-manifest');
    const manifest = (await readdir(path)).find((f) => f.startsWith('MANIFEST-'))!;
    const bytes = await readFile(join(path, manifest));
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(join(path, manifest), bytes);
    await expect(openAll(path)).rejects.toThrow(/is damaged: LevelDB cannot open it \(Corruption: /);
  });

  it('a database in use by another opener is not called damaged, and no damage marker is left', async () => {
    const path = await copy('in-use');
    const first = await openMemberDb(path);
    try {
      await expect(openMemberDb(path)).rejects.toThrow(/is in use by another process/);
      expect((await readdir(path)).includes(DAMAGE_MARKER)).toBe(false);
    } finally {
      await first.close();
    }
  });

  it('a fresh directory still opens, and an empty one is created', async () => {
    await openAll(join(dir, 'fresh', 'db'));
    expect((await readdir(join(dir, 'fresh', 'db'))).includes('CURRENT')).toBe(true);
  });
});
