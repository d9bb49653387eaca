import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Packr } from 'msgpackr';
import { MvccStore } from '../kv/mvcc.js';
import { EMPTY_BYTES, NONE, bootstrapEntries, nodeId, type NodeId } from '../raft/index.js';
import { openMemberDb, sublevel } from '../storage/member-db.js';
import { RaftStore } from '../storage/raft-store.js';
import { memberIdFor } from './config.js';
import { loadOrCreateIdentity } from './identity.js';
import { MemberRegistry, decodeMemberInfo, encodeMemberInfo, type MemberInfo } from './members.js';

// `cairn snapshot restore`, as etcdutl's: a new member data directory made from a
// backup (GET /v1/snapshot, saved by `cairn snapshot save`) with a NEW membership.
//
// The directory holds (1) the backup's store image, at its revision, with the old
// membership dropped; (2) a Raft snapshot record at the image's applied index S,
// then one committed conf change per new founder at S+1..S+N, exactly as a first
// start writes them (bootstrap.ts) but shifted above S, so the store, which has
// applied S, applies them on start and learns the new membership; (3) the member's
// identity. Every member restored from the same file with the same flags gets the
// same log, so `cairn serve` on them forms one cluster holding the backup's keys.

const packr = new Packr({ useRecords: false });
/** Frames are about 512 KiB plus one row; anything near this is not a cairn snapshot. */
const FRAME_BYTES_MAX = 256 * 1024 * 1024;
/** The image's sections (see MvccStore.imageSections) in the order they are written. */
const KNOWN_SECTIONS = ['hist', 'live', 'lease', `carry:${MemberRegistry.SECTION}`] as const;

/** The file is not a complete cairn snapshot: nothing was created. */
export class SnapshotFileError extends Error {
  override readonly name = 'SnapshotFileError';
}

/** The data directory already holds something: restoring refuses to overwrite it. */
export class DataDirNotEmptyError extends Error {
  override readonly name = 'DataDirNotEmptyError';
  constructor(
    readonly dir: string,
    readonly reason: string,
  ) {
    super(`${dir}: ${reason}`);
  }
}

/** What a snapshot file holds (`cairn snapshot status`), read without writing anything. */
export interface SnapshotSummary {
  readonly bytes: number;
  /** sha256 of the whole file, hex. */
  readonly sha256: string;
  readonly revision: number;
  readonly compactRevision: number;
  readonly appliedIndex: number;
  /** Live keys at `revision`. */
  readonly keys: number;
  readonly leases: number;
  /** The members of the cluster it was taken from. */
  readonly members: readonly (MemberInfo & { readonly id: string })[];
}

type Frame = { readonly t: string; readonly state?: unknown; readonly rows?: unknown };

/** Splits a byte stream into the image's length-prefixed msgpack frames; throws SnapshotFileError on damage. */
async function* readFrames(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Frame> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let offset = 0;
  for await (const chunk of chunks) {
    pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    pendingBytes += chunk.byteLength;
    while (pendingBytes >= 4) {
      const head = pending.length === 1 ? pending[0] : Buffer.concat(pending);
      pending = [head];
      const size = head.readUInt32BE(0);
      if (size === 0 || size > FRAME_BYTES_MAX) throw new SnapshotFileError(`at byte ${offset}: a frame of ${size} bytes cannot be part of a cairn snapshot`);
      if (pendingBytes < 4 + size) break;
      let frame: unknown;
      try {
        frame = packr.unpack(head.subarray(4, 4 + size));
      } catch (err) {
        throw new SnapshotFileError(`at byte ${offset}: a frame does not decode (${(err as Error).message})`);
      }
      if (typeof frame !== 'object' || frame === null || typeof (frame as Frame).t !== 'string') {
        throw new SnapshotFileError(`at byte ${offset}: a frame is not a snapshot frame`);
      }
      yield frame as Frame;
      offset += 4 + size;
      pending = [head.subarray(4 + size)];
      pendingBytes -= 4 + size;
    }
  }
  if (pendingBytes > 0) throw new SnapshotFileError(`it ends in the middle of a frame at byte ${offset} (truncated?)`);
}

function isRows(rows: unknown): rows is [Uint8Array, Uint8Array][] {
  return Array.isArray(rows) && rows.every((r) => Array.isArray(r) && r.length === 2 && r[0] instanceof Uint8Array && r[1] instanceof Uint8Array);
}

function imageState(state: unknown): { appliedIndex: number; revision: number; compactRevision: number } {
  const s = state as Record<string, unknown> | undefined;
  const fields = ['appliedIndex', 'revision', 'compactRevision'] as const;
  if (!s || fields.some((f) => !Number.isSafeInteger(s[f]) || (s[f] as number) < 0)) throw new SnapshotFileError('its state frame is malformed');
  return { appliedIndex: s.appliedIndex as number, revision: s.revision as number, compactRevision: s.compactRevision as number };
}

/**
 * Reads a whole snapshot file and checks that it is complete: a state frame
 * first, then only known sections in order, ending with the membership (every
 * image of a running cluster has one, and it is written last, so a file cut at a
 * frame boundary is caught too). Throws SnapshotFileError when it is not.
 */
export async function inspectSnapshot(file: string): Promise<SnapshotSummary> {
  let bytes: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new SnapshotFileError(`${file} is not a file`);
    bytes = info.size;
  } catch (err) {
    if (err instanceof SnapshotFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SnapshotFileError(code === 'ENOENT' ? `${file} does not exist` : `cannot read ${file}: ${code ?? (err as Error).message}`);
  }
  if (bytes === 0) throw new SnapshotFileError(`${file} is empty`);
  const hash = createHash('sha256');
  const hashed = async function* (): AsyncIterable<Uint8Array> {
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      yield chunk as Buffer;
    }
  };
  let state: ReturnType<typeof imageState> | undefined;
  let keys = 0;
  let leases = 0;
  let sectionIndex = -1;
  const members: (MemberInfo & { id: string })[] = [];
  for await (const frame of readFrames(hashed())) {
    if (frame.t === 'state') {
      if (state) throw new SnapshotFileError('it has two state frames');
      state = imageState(frame.state);
      continue;
    }
    if (!state) throw new SnapshotFileError('it does not begin with a state frame');
    const index = (KNOWN_SECTIONS as readonly string[]).indexOf(frame.t);
    if (index < 0) throw new SnapshotFileError(`it has an unknown section ${JSON.stringify(frame.t)} (made by a newer cairn?)`);
    if (index < sectionIndex) throw new SnapshotFileError(`its sections are out of order (${frame.t} after ${KNOWN_SECTIONS[sectionIndex]})`);
    sectionIndex = index;
    if (!isRows(frame.rows)) throw new SnapshotFileError(`its ${frame.t} section is malformed`);
    if (frame.t === 'live') keys += frame.rows.length;
    if (frame.t === 'lease') leases += frame.rows.length;
    if (frame.t === `carry:${MemberRegistry.SECTION}`) {
      for (const [key, value] of frame.rows) members.push({ id: Buffer.from(key).toString('utf8'), ...decodeMemberInfo(value) });
    }
  }
  if (!state) throw new SnapshotFileError('it has no state frame');
  if (members.length === 0) throw new SnapshotFileError('it ends before the membership section (truncated?)');
  return { bytes, sha256: hash.digest('hex'), ...state, keys, leases, members };
}

export interface RestoreOptions {
  /** A file saved by `cairn snapshot save` (the body of GET /v1/snapshot). */
  readonly snapshotFile: string;
  /** The new member's data directory: absent or empty. */
  readonly dataDir: string;
  /** This member's name; it must be in initialCluster. */
  readonly name: string;
  /** name -> peer URLs of every member of the new cluster (the same on every restored member). */
  readonly initialCluster: ReadonlyMap<string, readonly string[]>;
  readonly initialClusterToken: string;
  /** This member's peer URLs, as in initialCluster. */
  readonly initialAdvertisePeerUrls: readonly string[];
}

export interface RestoreResult {
  readonly memberId: string;
  readonly dataDir: string;
  readonly snapshot: SnapshotSummary;
  /** The new membership: name and id of each founder. */
  readonly members: readonly { readonly name: string; readonly id: string; readonly peerUrls: readonly string[] }[];
}

/** Throws DataDirNotEmptyError unless `dir` is absent or an empty directory; returns whether it exists. */
async function checkDataDirEmpty(dir: string): Promise<boolean> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code === 'ENOTDIR') throw new DataDirNotEmptyError(dir, 'it exists and is not a directory');
    throw err;
  }
  if (entries.length > 0) throw new DataDirNotEmptyError(dir, `it is not empty (${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}); restore only into a new or empty directory`);
  return true;
}

/**
 * Builds a member data directory from a snapshot file with a new membership. The
 * file is checked completely before anything is written; the directory is built
 * next to its final place and renamed into it at the end, so a failure leaves
 * nothing behind.
 */
export async function restoreMember(options: RestoreOptions): Promise<RestoreResult> {
  const dataDir = resolve(options.dataDir);
  const own = options.initialCluster.get(options.name);
  if (!own || !own.some((url) => options.initialAdvertisePeerUrls.includes(url))) {
    throw new Error(`the initial cluster must give ${options.name} its advertised peer URLs ${options.initialAdvertisePeerUrls.join(',')}`);
  }
  await checkDataDirEmpty(dataDir);
  const snapshot = await inspectSnapshot(options.snapshotFile);
  const founders = [...options.initialCluster]
    .map(([name, peerUrls]) => ({ name, peerUrls, id: nodeId(memberIdFor(peerUrls, options.initialClusterToken)) }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const memberId = nodeId(memberIdFor(options.initialAdvertisePeerUrls, options.initialClusterToken));

  await mkdir(dirname(dataDir), { recursive: true });
  const staging = join(dirname(dataDir), `.${basename(dataDir)}.restoring-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);
  try {
    await writeMemberData(staging, options, founders, memberId);
    // Checked again (something may have appeared meanwhile); an empty directory makes way for the new one.
    if (await checkDataDirEmpty(dataDir)) await rmdir(dataDir);
    await rename(staging, dataDir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return { memberId, dataDir, snapshot, members: founders.map((f) => ({ name: f.name, id: f.id, peerUrls: f.peerUrls })) };
}

async function writeMemberData(
  dir: string,
  options: RestoreOptions,
  founders: readonly { readonly name: string; readonly peerUrls: readonly string[]; readonly id: NodeId }[],
  memberId: NodeId,
): Promise<void> {
  const db = await openMemberDb(join(dir, 'db'));
  try {
    const kv = await MvccStore.open(db, { carrySections: [MemberRegistry.SECTION] });
    await kv.restore(createReadStream(options.snapshotFile));
    const applied = kv.appliedIndex;
    await kv.close();
    // The old cluster's members are not this one's: the conf changes below record the new ones.
    await sublevel(db, MemberRegistry.SECTION).clear();

    const store = await RaftStore.open(db);
    const entries = bootstrapEntries(founders.map((f) => ({ id: f.id, context: encodeMemberInfo({ name: f.name, peerUrls: f.peerUrls, clientUrls: [] }) })))
      .map((entry, i) => ({ ...entry, index: applied + 1 + i }));
    const confState = { voters: founders.map((f) => f.id), learners: [] };
    await store.persist({
      ...(applied > 0 ? { snapshot: { metadata: { index: applied, term: 1, confState }, data: EMPTY_BYTES } } : {}),
      entries,
      hardState: { term: 1, vote: NONE, commit: applied + entries.length },
    });
    if (applied === 0) await db.batch([store.confStateOp(confState)], { sync: true });
    await store.close();
    await loadOrCreateIdentity(db, { id: memberId, name: options.name, clusterToken: options.initialClusterToken });
  } finally {
    await db.close();
  }
}
