import { Packr } from 'msgpackr';
import type { BatchOp, SubDb } from '../storage/member-db.js';

// The store's snapshot image: length-prefixed msgpack frames, first the state,
// then the rows of each section in key order, at most about 512 KiB a frame.

const packr = new Packr({ useRecords: false });
const FRAME_BYTES = 512 * 1024;

export interface ImageState {
  readonly appliedIndex: number;
  readonly revision: number;
  readonly compactRevision: number;
}

type Rows = [Uint8Array, Uint8Array][];
type Frame = { t: 'state'; state: ImageState } | { t: string; rows: Rows };
type SectionIterator = AsyncIterable<[Uint8Array, Uint8Array]> & { close(): Promise<void> };

function frame(f: Frame): Uint8Array {
  const body = packr.pack(f);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/**
 * Streams an image. The iterators must have been opened by the caller in the same
 * synchronous step in which it read `state`: LevelDB iterators read from a
 * snapshot taken when they are created, so state and rows agree.
 */
export async function* imageFrames(state: ImageState, iterators: ReadonlyArray<readonly [string, SectionIterator]>): AsyncIterable<Uint8Array> {
  try {
    yield frame({ t: 'state', state });
    for (const [name, it] of iterators) {
      let rows: Rows = [];
      let bytes = 0;
      for await (const [k, v] of it) {
        rows.push([k, v]);
        bytes += k.length + v.length;
        if (bytes >= FRAME_BYTES) {
          yield frame({ t: name, rows });
          rows = [];
          bytes = 0;
        }
      }
      if (rows.length > 0) yield frame({ t: name, rows });
    }
  } finally {
    for (const [, it] of iterators) await it.close();
  }
}

async function* frames(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Frame> {
  let buffered = Buffer.alloc(0);
  for await (const chunk of chunks) {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4) {
      const size = buffered.readUInt32BE(0);
      if (buffered.length < 4 + size) break;
      yield packr.unpack(buffered.subarray(4, 4 + size)) as Frame;
      buffered = buffered.subarray(4 + size);
    }
  }
  if (buffered.length > 0) throw new Error('snapshot image ends in the middle of a frame');
}

/**
 * The image as ONE batch: a delete of every key now in the target sections, then
 * the image's rows, so that written at once it replaces the sections atomically (a
 * crash part way through a restore must leave the old state whole, never a mix).
 * The batch holds the whole image in memory: its size is bounded by the store's
 * (--quota-backend-bytes).
 */
export async function imageBatch(chunks: AsyncIterable<Uint8Array>, target: Readonly<Record<string, SubDb>>): Promise<{ ops: BatchOp[]; state: ImageState }> {
  const ops: BatchOp[] = [];
  for (const section of Object.values(target)) for await (const key of section.keys()) ops.push({ type: 'del', sublevel: section, key });
  let state: ImageState | undefined;
  for await (const f of frames(chunks)) {
    if (f.t === 'state' && 'state' in f) state = f.state;
    else if ('rows' in f && target[f.t]) for (const [key, value] of f.rows) ops.push({ type: 'put', sublevel: target[f.t], key, value });
    else throw new Error(`snapshot image has an unknown frame ${JSON.stringify(f.t)}`);
  }
  if (!state) throw new Error('snapshot image has no state frame');
  return { ops, state };
}
