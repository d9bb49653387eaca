// Framing of the peer message stream (peer-protocol.ts, POST /raft/messages): the body
// is a sequence of frames, each a 4-byte big-endian length and that many bytes of one
// message batch (codec.ts). One request carries as many frames as the sender has to
// send while it stays open, so a member pays for an HTTP request only now and then,
// not per batch.

/** Bytes of a frame's length prefix. */
export const FRAME_HEADER_BYTES = 4;

/** A frame claims more bytes than the receiver takes in one batch. */
export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError';
  constructor(
    readonly frameBytes: number,
    readonly maxFrameBytes: number,
  ) {
    super(`a frame of ${frameBytes} bytes is larger than allowed (${maxFrameBytes})`);
  }
}

/** One frame holding `payload`. */
export function encodeFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  frame.writeUInt32BE(payload.byteLength, 0);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Cuts a byte stream, arriving in chunks of any size, into frame payloads. Holds at most
 * one frame's bytes (maxFrameBytes plus its header) and whatever the current chunk holds.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly maxFrameBytes: number) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes <= 0) throw new RangeError('FrameReader: maxFrameBytes must be a positive integer');
  }

  /** Bytes held that are not yet a whole frame (0 at a frame boundary). */
  get pendingBytes(): number {
    return this.bytes;
  }

  /** The frames that `chunk` completes, in order. Throws FrameTooLargeError on a length past the bound (checked before its bytes are kept). */
  push(chunk: Uint8Array): Buffer[] {
    if (chunk.byteLength === 0) return [];
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.bytes += chunk.byteLength;
    const frames: Buffer[] = [];
    while (this.bytes >= FRAME_HEADER_BYTES) {
      const length = this.peekLength();
      if (length > this.maxFrameBytes) throw new FrameTooLargeError(length, this.maxFrameBytes);
      if (this.bytes < FRAME_HEADER_BYTES + length) break;
      frames.push(this.take(FRAME_HEADER_BYTES + length).subarray(FRAME_HEADER_BYTES));
    }
    return frames;
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first.byteLength >= FRAME_HEADER_BYTES) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, FRAME_HEADER_BYTES).readUInt32BE(0);
  }

  /** Removes and returns the next `count` bytes (count <= this.bytes). */
  private take(count: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.byteLength >= count) {
      out = first.subarray(0, count);
      if (first.byteLength === count) this.chunks.shift();
      else this.chunks[0] = first.subarray(count);
    } else {
      out = Buffer.allocUnsafe(count);
      let filled = 0;
      while (filled < count) {
        const head = this.chunks[0];
        const used = Math.min(head.byteLength, count - filled);
        head.copy(out, filled, 0, used);
        filled += used;
        if (used === head.byteLength) this.chunks.shift();
        else this.chunks[0] = head.subarray(used);
      }
    }
    this.bytes -= count;
    return out;
  }
}
