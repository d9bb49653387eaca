import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level';

/** One LevelDB per member; everything it keeps lives in sublevels of it, so one batch can span them. */
export type MemberDb = Level<Uint8Array, Uint8Array>;
export type SubDb = AbstractSublevel<MemberDb, string | Uint8Array, Uint8Array, Uint8Array>;

/** The data on disk is damaged or contradicts itself: the member must not start on it. */
export class CorruptDataError extends Error {
  override readonly name = 'CorruptDataError';
}

/**
 * Left in the database directory once damage was found, so every later start
 * refuses too: LevelDB's own recovery drops what it cannot read and rewrites the
 * rest, so a second open would find nothing wrong and serve what is left.
 */
export const DAMAGE_MARKER = 'CAIRN-DAMAGED';

const ADVICE = 'restore this member from a backup, or remove its data directory and add it to the cluster again as a new member';

/**
 * Opens the member's database, refusing damaged data with a message that says
 * what is wrong. classic-level opens LevelDB without paranoid checks and reads
 * without verifying checksums, so on its own it would (a) skip log records it
 * cannot read and go on with the rest, (b) serve a table block whose bytes
 * changed, (c) create an empty database when CURRENT is gone. Hence, around the
 * open: every table's block checksums are verified first, the database is never
 * created over existing files, and LevelDB's recovery report (its LOG file) is
 * read for dropped log records. Truncation at the end of a log, which LevelDB
 * cannot tell from a crash, is RaftStore's to detect (its synced-writes count).
 */
export async function openMemberDb(dir: string): Promise<MemberDb> {
  const files = (await readdir(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)))) ?? [];
  if (files.includes(DAMAGE_MARKER)) throw new CorruptDataError(await readFile(join(dir, DAMAGE_MARKER), 'utf8'));
  // A MANIFEST alone holds nothing: a first open killed before it wrote CURRENT starts afresh.
  const holdsData = files.some((f) => f === 'CURRENT' || /\.(log|ldb|sst)$/.test(f));
  if (holdsData && !files.includes('CURRENT')) await refuse(dir, 'its CURRENT file is missing');
  const damagedTables = await verifyTables(dir, files);
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: !holdsData });
  try {
    await db.open();
  } catch (err) {
    const cause = ((err as { cause?: Error }).cause ?? (err as Error)).message;
    if (/\block\b/i.test(cause)) throw new Error(`the member database in ${dir} is in use by another process (${cause})`);
    // Damage only when LevelDB says so; anything else (permissions, too many open files) may pass.
    if (/^Corruption:|No such file or directory|does not exist/.test(cause)) return refuse(dir, `LevelDB cannot open it (${cause})`);
    throw new Error(`the member database in ${dir} cannot be opened: ${cause}`);
  }
  // Opening deletes tables no version refers to (an interrupted compaction's output): those do not count.
  const stillThere = await Promise.all(damagedTables.map(async (t) => ((await stat(join(dir, t.file)).catch(() => undefined)) ? t : undefined)));
  const damage = [...(await droppedLogRecords(dir)), ...stillThere.flatMap((t) => (t ? [`table ${t.file}: ${t.reason}`] : []))];
  if (damage.length > 0) {
    await db.close();
    return refuse(dir, damage.join('; '));
  }
  return db;
}

async function refuse(dir: string, what: string): Promise<never> {
  const message = `the member database in ${dir} is damaged: ${what}; ${ADVICE}`;
  await writeFile(join(dir, DAMAGE_MARKER), message).catch(() => undefined);
  throw new CorruptDataError(message);
}

/** What LevelDB reported dropping while it replayed its logs during the open just done. */
async function droppedLogRecords(dir: string): Promise<string[]> {
  // LevelDB starts a new LOG at every open (the previous one becomes LOG.old).
  const log = await readFile(join(dir, 'LOG'), 'utf8').catch(() => '');
  return log
    .split('\n')
    .filter((line) => / dropping \d+ bytes; /.test(line))
    .map((line) => `LevelDB skipped unreadable records: ${line.replace(/^.*?(\S+\.log: dropping)/, '$1')}`);
}

export function sublevel(db: MemberDb, name: string): SubDb {
  return db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
}

/** One operation of a batch on the member's database (use `sublevel` to target a section). */
export type BatchOp = AbstractBatchOperation<MemberDb, Uint8Array, Uint8Array>;

// ---- LevelDB table checksums (leveldb/table/format.cc, doc/table_format.md) ----------------------

const FOOTER_BYTES = 48;
const BLOCK_TRAILER_BYTES = 5;
const TABLE_MAGIC_LOW = 0x8b80fb57;
const TABLE_MAGIC_HIGH = 0xdb477524;

/** Reads every table whole and checks each block's CRC32C; returns the tables that fail. */
async function verifyTables(dir: string, files: readonly string[]): Promise<{ file: string; reason: string }[]> {
  const damaged: { file: string; reason: string }[] = [];
  for (const file of files.filter((f) => /\.(ldb|sst)$/.test(f)).sort()) {
    const bytes = await readFile(join(dir, file));
    const reason = tableDamage(bytes);
    if (reason !== undefined) damaged.push({ file, reason });
  }
  return damaged;
}

/** Why a table file is not intact, or undefined. Walks footer → metaindex and index → every block they name. */
export function tableDamage(table: Uint8Array): string | undefined {
  try {
    if (table.length < FOOTER_BYTES) return `${table.length} bytes, shorter than a table footer`;
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    const footer = table.length - FOOTER_BYTES;
    if (view.getUint32(table.length - 8, true) !== TABLE_MAGIC_LOW || view.getUint32(table.length - 4, true) !== TABLE_MAGIC_HIGH) return 'no table footer (truncated?)';
    const [metaIndex, afterMeta] = readHandle(table, footer);
    const [index] = readHandle(table, afterMeta);
    for (const handle of [...blockHandles(readBlock(table, metaIndex, footer), table, footer), ...blockHandles(readBlock(table, index, footer), table, footer)]) {
      checkBlock(table, handle, footer);
    }
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

interface BlockHandle {
  readonly offset: number;
  readonly size: number;
}

function readVarint(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  for (let shift = 0, i = at; i < bytes.length && shift < 64; i++, shift += 7) {
    value += (bytes[i] & 0x7f) * 2 ** shift;
    if ((bytes[i] & 0x80) === 0) return [value, i + 1];
  }
  throw new Error(`malformed varint at byte ${at}`);
}

function readHandle(bytes: Uint8Array, at: number): [BlockHandle, number] {
  const [offset, next] = readVarint(bytes, at);
  const [size, end] = readVarint(bytes, next);
  return [{ offset, size }, end];
}

/** Throws unless the block's stored CRC32C (over its bytes and type) matches. */
function checkBlock(table: Uint8Array, handle: BlockHandle, limit: number): void {
  const end = handle.offset + handle.size;
  if (end + BLOCK_TRAILER_BYTES > limit) throw new Error(`block at ${handle.offset} (${handle.size} bytes) runs past the end of the table`);
  const stored = new DataView(table.buffer, table.byteOffset + end + 1, 4).getUint32(0, true);
  if (crc32c(table, handle.offset, end + 1) !== unmaskCrc(stored)) throw new Error(`checksum mismatch in the block at byte ${handle.offset}`);
}

/** An index or metaindex block's contents, checked and uncompressed. */
function readBlock(table: Uint8Array, handle: BlockHandle, limit: number): Uint8Array {
  checkBlock(table, handle, limit);
  const end = handle.offset + handle.size;
  const contents = table.subarray(handle.offset, end);
  const type = table[end];
  if (type === 0) return contents;
  if (type === 1) return snappyUncompress(contents);
  throw new Error(`unknown block type ${type} at byte ${handle.offset}`);
}

/** The block handles an index or metaindex block holds as its entries' values. */
function blockHandles(block: Uint8Array, table: Uint8Array, limit: number): BlockHandle[] {
  if (block.length < 4) throw new Error('index block too short');
  const restarts = new DataView(block.buffer, block.byteOffset + block.length - 4, 4).getUint32(0, true);
  const entriesEnd = block.length - 4 - 4 * restarts;
  if (entriesEnd < 0) throw new Error('index block restart array out of bounds');
  const handles: BlockHandle[] = [];
  for (let at = 0; at < entriesEnd; ) {
    const [, afterShared] = readVarint(block, at);
    const [unshared, afterUnshared] = readVarint(block, afterShared);
    const [valueLength, valueStart] = readVarint(block, afterUnshared);
    const value = valueStart + unshared;
    if (value + valueLength > entriesEnd) throw new Error('index entry out of bounds');
    const [handle] = readHandle(block.subarray(value, value + valueLength), 0);
    if (handle.offset + handle.size + BLOCK_TRAILER_BYTES > Math.min(limit, table.length)) throw new Error(`index names a block past the end of the table`);
    handles.push(handle);
    at = value + valueLength;
  }
  return handles;
}

const CRC32C_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32c(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** LevelDB stores CRCs rotated and offset (crc32c.h: Mask), so a CRC of data holding CRCs stays strong. */
function unmaskCrc(masked: number): number {
  const rotated = (masked - 0xa282ead8) >>> 0;
  return ((rotated >>> 17) | (rotated << 15)) >>> 0;
}

/** Snappy's block format (format_description.txt): a varint length, then literals and back-references. */
function snappyUncompress(input: Uint8Array): Uint8Array {
  const [length, start] = readVarint(input, 0);
  const out = new Uint8Array(length);
  let o = 0;
  for (let i = start; i < input.length; ) {
    const tag = input[i++];
    if ((tag & 3) === 0) {
      let count = tag >>> 2;
      if (count >= 60) {
        const bytes = count - 59;
        count = 0;
        for (let b = 0; b < bytes; b++) count += input[i++] * 2 ** (8 * b);
      }
      count += 1;
      if (i + count > input.length || o + count > length) throw new Error('snappy literal out of bounds');
      out.set(input.subarray(i, i + count), o);
      i += count;
      o += count;
      continue;
    }
    let count: number;
    let offset: number;
    if ((tag & 3) === 1) {
      count = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | input[i++];
    } else if ((tag & 3) === 2) {
      count = (tag >>> 2) + 1;
      offset = input[i] | (input[i + 1] << 8);
      i += 2;
    } else {
      count = (tag >>> 2) + 1;
      offset = (input[i] | (input[i + 1] << 8) | (input[i + 2] << 16)) + input[i + 3] * 2 ** 24;
      i += 4;
    }
    if (offset === 0 || offset > o || o + count > length) throw new Error('snappy copy out of bounds');
    for (let k = 0; k < count; k++, o++) out[o] = out[o - offset];
  }
  if (o !== length) throw new Error('snappy block shorter than its length');
  return out;
}
