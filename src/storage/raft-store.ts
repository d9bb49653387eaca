import { Packr } from 'msgpackr';
import {
  EMPTY_BYTES,
  MemoryStorage,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type NodeId,
  type Snapshot,
  type SnapshotMetadata,
} from '../raft/index.js';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptDataError, sublevel, type BatchOp, type MemberDb, type SubDb } from './member-db.js';

export { CorruptDataError };

const packr = new Packr({ useRecords: false });
const KEY_HARD_STATE = new TextEncoder().encode('hardState');
const KEY_CONF_STATE = new TextEncoder().encode('confState');
const KEY_SNAPSHOT = new TextEncoder().encode('snapshot');
const KEY_SYNCED_WRITES = new TextEncoder().encode('syncedWrites');
/**
 * Beside the LevelDB files: how many synced writes were durable at some point.
 * LevelDB takes a log cut short for a crash in the middle of a write and opens
 * without a word, having forgotten votes and entries this member acknowledged;
 * the count inside the database then falls behind this file's.
 */
export const SYNCED_WRITES_FILE = 'CAIRN-SYNCED-WRITES';
/** Log entries below a snapshot are deleted in batches of at most this many keys. */
const COMPACT_BATCH_KEYS = 1000;


/** Log keys are the 8-byte big-endian index, so LevelDB's byte order is numeric order. */
export function logKey(index: LogIndex): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setBigUint64(0, BigInt(index));
  return key;
}

function indexOfKey(key: Uint8Array): LogIndex {
  return Number(new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0));
}

const ENTRY_TYPES = ['normal', 'confChange'] as const;

function encodeEntry(e: Entry): Uint8Array {
  return packr.pack([e.term, ENTRY_TYPES.indexOf(e.type), e.data]);
}

function decodeEntry(index: LogIndex, bytes: Uint8Array): Entry {
  const [term, type, data] = packr.unpack(bytes) as [number, number, Uint8Array];
  if (!Number.isInteger(term) || ENTRY_TYPES[type] === undefined || !(data instanceof Uint8Array)) {
    throw new CorruptDataError(`log entry ${index} is malformed`);
  }
  return { term, index, type: ENTRY_TYPES[type], data };
}

export interface PersistInput {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  /**
   * Write with sync: true. Required when there are entries, a snapshot, or a new
   * term or vote; a hard state that only moves commit may skip it (a lost commit
   * index is learned again from the leader), as etcd does. Default true.
   */
  readonly sync?: boolean;
}

/**
 * The Raft log, hard state, membership and snapshot metadata of one member, in
 * LevelDB, mirrored in a MemoryStorage that the core reads synchronously.
 *
 * The state machine image itself is the member's kv data (src/kv), so a snapshot
 * here is metadata only: (index, term, confState) plus empty data.
 */
export class RaftStore {
  readonly memory = new MemoryStorage();
  private readonly log: SubDb;
  private readonly meta: SubDb;
  private compacting: Promise<void> = Promise.resolve();
  /** Synced writes made (each persist with sync, counted in its own batch). */
  private syncedWrites = 0;
  private syncedWritesFile: FileHandle | undefined;
  /** Updates of the file, in order; each writes a count already durable, so the file never runs ahead. */
  private recording: Promise<void> = Promise.resolve();

  private constructor(private readonly db: MemberDb) {
    this.log = sublevel(db, 'raft-log');
    this.meta = sublevel(db, 'raft-meta');
  }

  /** Loads what was persisted (nothing, on a first start). Throws CorruptDataError on contradictions. */
  static async open(db: MemberDb): Promise<RaftStore> {
    const store = new RaftStore(db);
    await store.load();
    return store;
  }

  private async load(): Promise<void> {
    const [hsBytes, csBytes, snapBytes, countBytes] = await this.meta.getMany([KEY_HARD_STATE, KEY_CONF_STATE, KEY_SNAPSHOT, KEY_SYNCED_WRITES]);
    const syncedWrites = countBytes ? (packr.unpack(countBytes) as number) : 0;
    await this.checkSyncedWrites(syncedWrites);
    if (snapBytes) {
      const metadata = packr.unpack(snapBytes) as SnapshotMetadata;
      this.memory.applySnapshot({ metadata, data: EMPTY_BYTES });
    }
    const first = this.memory.firstIndex();
    const entries: Entry[] = [];
    for await (const [key, value] of this.log.iterator({ gte: logKey(first) })) {
      const index = indexOfKey(key);
      const expected = first + entries.length;
      if (index !== expected) throw this.damaged(`the Raft log has a gap: expected entry ${expected}, found ${index}`);
      try {
        entries.push(decodeEntry(index, value));
      } catch (err) {
        throw this.damaged((err as Error).message);
      }
    }
    this.memory.append(entries);
    if (csBytes) this.memory.setConfState(packr.unpack(csBytes) as ConfState);
    if (hsBytes) {
      const hs = packr.unpack(hsBytes) as HardState;
      if (hs.commit > this.memory.lastIndex()) {
        throw this.damaged(`commit index ${hs.commit} is past the last log entry ${this.memory.lastIndex()}: the log was truncated`);
      }
      this.memory.setHardState({ term: hs.term, vote: hs.vote as NodeId, commit: hs.commit });
    }
    // Entries below the snapshot that a background compaction had not yet deleted.
    this.compactBelow(first);
    this.syncedWrites = syncedWrites;
    this.syncedWritesFile = await open(join(this.db.location, SYNCED_WRITES_FILE), 'w');
    this.recordSyncedWrites();
  }

  /** Refuses data that lost synced writes. */
  private async checkSyncedWrites(inDatabase: number): Promise<void> {
    const path = join(this.db.location, SYNCED_WRITES_FILE);
    const recorded = Number((await readFile(path, 'utf8').catch(() => '')).trim() || '0');
    if (Number.isSafeInteger(recorded) && recorded > inDatabase) {
      throw this.damaged(
        `it holds ${inDatabase} synced Raft writes but ${recorded} were made (${SYNCED_WRITES_FILE}): ` +
          'a data file was truncated or rolled back to an older copy, losing votes or entries this member acknowledged',
      );
    }
  }

  private damaged(what: string): CorruptDataError {
    return new CorruptDataError(
      `the member database in ${this.db.location} is damaged: ${what}; restore this member from a backup, or remove its data directory and add it to the cluster again as a new member`,
    );
  }

  private recordSyncedWrites(): void {
    const file = this.syncedWritesFile;
    const text = `${this.syncedWrites}\n`;
    // Best effort: a lost update only makes the check weaker, never wrong.
    this.recording = this.recording.then(() => file?.write(text, 0)).then(
      () => undefined,
      () => undefined,
    );
  }

  isEmpty(): boolean {
    return this.memory.lastIndex() === 0 && this.memory.initialState().hardState.term === 0;
  }

  /**
   * Persists one Ready's hard state, entries and snapshot in ONE batch with
   * sync: true, however many entries, then mirrors them in memory.
   */
  async persist(input: PersistInput): Promise<void> {
    const ops: BatchOp[] = [];
    if (input.snapshot) {
      ops.push({ type: 'put', sublevel: this.meta, key: KEY_SNAPSHOT, value: packr.pack(input.snapshot.metadata) });
      ops.push({ type: 'put', sublevel: this.meta, key: KEY_CONF_STATE, value: packr.pack(input.snapshot.metadata.confState) });
    }
    if (input.entries.length > 0) {
      for (const e of input.entries) ops.push({ type: 'put', sublevel: this.log, key: logKey(e.index), value: encodeEntry(e) });
      // A leader overwrote our tail: entries past the new end must go too.
      const oldLast = this.memory.lastIndex();
      const newLast = input.entries[input.entries.length - 1].index;
      for (let i = newLast + 1; i <= oldLast; i++) ops.push({ type: 'del', sublevel: this.log, key: logKey(i) });
    }
    if (input.hardState) ops.push({ type: 'put', sublevel: this.meta, key: KEY_HARD_STATE, value: packr.pack(input.hardState) });
    if (ops.length === 0) return;
    const sync = input.sync ?? true;
    // Only synced writes count: an unsynced one may be lost by a power cut, legitimately.
    if (sync) ops.push({ type: 'put', sublevel: this.meta, key: KEY_SYNCED_WRITES, value: packr.pack(this.syncedWrites + 1) });
    await this.db.batch(ops, { sync });
    if (sync) {
      this.syncedWrites++;
      this.recordSyncedWrites();
    }
    if (input.snapshot) this.memory.applySnapshot(input.snapshot);
    this.memory.append(input.entries);
    if (input.hardState) this.memory.setHardState(input.hardState);
  }

  /** A batch op recording a hard state, for a caller that writes it in a batch of its own (a commit-only change). */
  hardStateOp(hs: HardState): BatchOp {
    return { type: 'put', sublevel: this.meta, key: KEY_HARD_STATE, value: packr.pack(hs) };
  }

  /** Call after the caller's batch with hardStateOp() has been written. */
  setHardState(hs: HardState): void {
    this.memory.setHardState(hs);
  }

  /** A batch op recording the applied membership; the caller writes it with the applied index. */
  confStateOp(cs: ConfState): BatchOp {
    return { type: 'put', sublevel: this.meta, key: KEY_CONF_STATE, value: packr.pack(cs) };
  }

  /** Call after the caller's batch with confStateOp() has been written. */
  setConfState(cs: ConfState): void {
    this.memory.setConfState(cs);
  }

  /**
   * Records a snapshot at `index` (the state machine has applied it) and drops
   * the log before `keepFrom` (<= index; keep some entries so slightly slow
   * followers catch up from the log rather than a snapshot).
   */
  async createSnapshot(index: LogIndex, confState: ConfState, keepFrom: LogIndex): Promise<void> {
    const snapshot = this.memory.createSnapshot(index, confState, EMPTY_BYTES);
    await this.db.batch([{ type: 'put', sublevel: this.meta, key: KEY_SNAPSHOT, value: packr.pack(snapshot.metadata) }], { sync: true });
    const compactTo = Math.min(index, keepFrom - 1);
    if (compactTo > this.memory.firstIndex() - 1) {
      this.memory.compact(compactTo);
      this.compactBelow(compactTo + 1);
    }
  }

  /** Deletes persisted log entries below `index` in bounded batches, in the background. */
  private compactBelow(index: LogIndex): void {
    this.compacting = this.compacting.then(async () => {
      for (;;) {
        const keys: Uint8Array[] = [];
        for await (const key of this.log.keys({ lt: logKey(index), limit: COMPACT_BATCH_KEYS })) keys.push(key);
        if (keys.length === 0) return;
        await this.log.batch(keys.map((key) => ({ type: 'del' as const, key })));
      }
    });
  }

  /** Waits for background compaction and the last record of synced writes. */
  async close(): Promise<void> {
    await this.compacting;
    await this.recording;
    await this.syncedWritesFile?.close();
    this.syncedWritesFile = undefined;
  }
}
