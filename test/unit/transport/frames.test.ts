import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameReader, FrameTooLargeError, encodeFrame } from '../../../src/transport/frames.js';
import { replayable } from '../../support/hostile/fast-check-options.js';

/** `bytes` cut at the given points (sorted, deduplicated, within bounds). */
function cutAt(bytes: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    pieces.push(bytes.subarray(from, cut));
    from = cut;
  }
  return pieces;
}

describe('frames', () => {
  it('gives back every payload, in order, however the stream is cut into chunks (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 40 }), (payloads, points) => {
        const stream = Buffer.concat(payloads.map((payload) => encodeFrame(payload)));
        const reader = new FrameReader(300);
        const out = cutAt(stream, points).flatMap((chunk) => reader.push(chunk));
        expect(out.map((frame) => Buffer.from(frame))).toEqual(payloads.map((payload) => Buffer.from(payload)));
        expect(reader.pendingBytes).toBe(0);
      }),
      replayable(300),
    );
  });

  it('holds a frame cut short as pending bytes, and completes it with the next chunk', () => {
    const frame = encodeFrame(Buffer.from('hello'));
    const reader = new FrameReader(100);
    expect(reader.push(frame.subarray(0, 2))).toEqual([]);
    expect(reader.pendingBytes).toBe(2);
    expect(reader.push(frame.subarray(2, 6))).toEqual([]);
    expect(reader.push(frame.subarray(6)).map(String)).toEqual(['hello']);
    expect(reader.pendingBytes).toBe(0);
  });

  it('refuses a length past the bound as soon as the length is read, before the bytes arrive', () => {
    const reader = new FrameReader(10);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(11);
    expect(() => reader.push(header)).toThrow(FrameTooLargeError);
    expect(new FrameReader(11).push(Buffer.concat([header, Buffer.alloc(11)]))).toHaveLength(1);
  });
});
