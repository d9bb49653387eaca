import { describe, expect, it } from 'vitest';
import { MessageQueue } from '../../../src/transport/message-queue.js';
import { A, B, app } from './helpers.js';

const indexesOf = (batch: { index: number }[]) => batch.map((message) => message.index);

describe('MessageQueue', () => {
  it('refuses the newest message past the count bound', () => {
    const queue = new MessageQueue(3, 1_000_000);
    expect([1, 2, 3, 4].map((index) => queue.push(app(A, B, index), 10))).toEqual([true, true, true, false]);
    expect(queue.length).toBe(3);
    expect(indexesOf(queue.takeBatch(Infinity))).toEqual([1, 2, 3]);
  });

  it('refuses past the byte bound, but takes one oversized message into an empty queue', () => {
    const queue = new MessageQueue(100, 100);
    expect(queue.push(app(A, B, 1), 500)).toBe(true);
    expect(queue.push(app(A, B, 2), 1)).toBe(false);
    queue.takeBatch(Infinity);
    expect(queue.push(app(A, B, 3), 60)).toBe(true);
    expect(queue.push(app(A, B, 4), 60)).toBe(false);
    expect(queue.queuedBytes).toBe(60);
  });

  it('cuts batches at the byte limit, always taking at least one message', () => {
    const queue = new MessageQueue(10, 10_000);
    for (const index of [1, 2, 3, 4, 5]) queue.push(app(A, B, index), index === 1 ? 500 : 40);
    expect(indexesOf(queue.takeBatch(100))).toEqual([1]);
    expect(indexesOf(queue.takeBatch(100))).toEqual([2, 3]);
    expect(indexesOf(queue.takeBatch(100))).toEqual([4, 5]);
    expect(queue.takeBatch(100)).toEqual([]);
    expect(queue.queuedBytes).toBe(0);
  });

  it('keeps order across wrap-around of the ring', () => {
    const queue = new MessageQueue(4, 1_000_000);
    const taken: number[] = [];
    let next = 1;
    for (let round = 0; round < 10; round++) {
      while (queue.push(app(A, B, next), 1)) next++;
      taken.push(...indexesOf(queue.takeBatch(2.5)));
    }
    taken.push(...indexesOf(queue.takeBatch(Infinity)));
    expect(taken).toEqual(Array.from({ length: next - 1 }, (_, i) => i + 1));
  });

  it('clear() empties the queue and says how many were dropped', () => {
    const queue = new MessageQueue(4, 1_000_000);
    queue.push(app(A, B, 1), 1);
    queue.push(app(A, B, 2), 1);
    expect(queue.clear()).toBe(2);
    expect(queue.length).toBe(0);
    expect(queue.push(app(A, B, 3), 1)).toBe(true);
    expect(indexesOf(queue.takeBatch(Infinity))).toEqual([3]);
  });
});
