import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CommitNotices } from '../../../src/node/commit-notices.js';
import { makeMessage, nodeId, type Message } from '../../../src/raft/index.js';

const L = nodeId('1');
const A = nodeId('2');
const B = nodeId('3');
const entry = { term: 2, index: 0, type: 'normal' as const, data: new Uint8Array([1]) };

/** A commit notice: an append with no entries. */
const notice = (to: string, commit: number): Message => makeMessage({ type: 'app', from: L, to: nodeId(to), term: 2, index: 9, logTerm: 2, commit });
const append = (to: string, index: number, commit: number): Message =>
  makeMessage({ type: 'app', from: L, to: nodeId(to), term: 2, index: index - 1, logTerm: 2, commit, entries: [{ ...entry, index }] });
const heartbeat = (to: string, commit: number): Message => makeMessage({ type: 'heartbeat', from: L, to: nodeId(to), term: 2, commit });

function harness(holdMs = 2) {
  const batches: Message[][] = [];
  const notices = new CommitNotices((messages) => batches.push([...messages]), holdMs);
  return { notices, batches, sent: () => batches.flat() };
}

describe('CommitNotices', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('holds a commit notice and sends it in front of the next message to the same follower', () => {
    const { notices, batches } = harness();
    const n = notice('2', 10);
    notices.send([n, append('3', 11, 10)]);
    expect(batches).toEqual([[append('3', 11, 10)]]);
    const next = append('2', 11, 10);
    notices.send([next]);
    expect(batches[1]).toEqual([n, next]);
    // Nothing is left to go out when the hold ends.
    vi.advanceTimersByTime(10);
    expect(batches).toHaveLength(2);
  });

  it('sends what it holds when the hold ends, not before', () => {
    const { notices, sent } = harness(2);
    notices.send([notice('2', 10), notice('3', 10)]);
    vi.advanceTimersByTime(1);
    expect(sent()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent()).toEqual([notice('2', 10), notice('3', 10)]);
  });

  it('starts the hold again after its notices left with other messages', () => {
    const { notices, sent } = harness(2);
    notices.send([notice('2', 10)]);
    vi.advanceTimersByTime(1);
    notices.send([append('2', 11, 10)]);
    notices.send([notice('2', 11)]);
    // 2 ms after the first notice, but only 1 ms after the second: still held.
    vi.advanceTimersByTime(1);
    expect(sent()).toEqual([notice('2', 10), append('2', 11, 10)]);
    vi.advanceTimersByTime(1);
    expect(sent()).toEqual([notice('2', 10), append('2', 11, 10), notice('2', 11)]);
  });

  it('never holds appends with entries, heartbeats or any other message', () => {
    const { notices, sent } = harness();
    const others = [
      append('2', 11, 10),
      heartbeat('3', 10),
      makeMessage({ type: 'vote', from: L, to: A, term: 3, index: 9, logTerm: 2 }),
      makeMessage({ type: 'readIndexResp', from: L, to: B, term: 2, index: 10 }),
    ];
    notices.send(others);
    expect(sent()).toEqual(others);
  });

  it('sends at once the notice that a follower waits for (it proposed an entry the notice commits)', () => {
    const { notices, sent } = harness();
    notices.proposedBy(A, 11);
    // Commits up to 10: the follower's entry is not in it, but it learns something new it may wait for.
    notices.send([notice('2', 10)]);
    expect(sent()).toEqual([notice('2', 10)]);
    notices.send([notice('2', 11)]);
    expect(sent()).toEqual([notice('2', 10), notice('2', 11)]);
    // Everything it proposed is known committed there: the next notice is held again, and B's always was.
    notices.send([notice('2', 12), notice('3', 12)]);
    expect(sent()).toEqual([notice('2', 10), notice('2', 11)]);
  });

  it('counts a commit index sent in a heartbeat as told', () => {
    const { notices, sent } = harness();
    notices.proposedBy(A, 11);
    notices.send([heartbeat('2', 11)]);
    notices.send([notice('2', 11)]);
    expect(sent()).toEqual([heartbeat('2', 11)]);
  });

  it('sends everything held for a follower once it holds sixteen', () => {
    const { notices, batches } = harness();
    for (let commit = 1; commit <= 16; commit++) notices.send([notice('2', commit)]);
    expect(batches).toEqual([]);
    notices.send([notice('2', 17)]);
    expect(batches).toEqual([Array.from({ length: 17 }, (_, i) => notice('2', i + 1))]);
  });

  it('holds nothing when the hold is 0 ms', () => {
    const { notices, sent } = harness(0);
    notices.send([notice('2', 10)]);
    expect(sent()).toEqual([notice('2', 10)]);
  });

  it('reset() sends what it holds and forgets the followers\' proposals', () => {
    const { notices, sent } = harness();
    notices.proposedBy(A, 20);
    notices.send([notice('3', 10)]);
    notices.reset();
    expect(sent()).toEqual([notice('3', 10)]);
    notices.send([notice('2', 15)]);
    expect(sent()).toEqual([notice('3', 10)]);
  });

  it('close() drops what it holds and sends nothing afterwards', () => {
    const { notices, sent } = harness();
    notices.send([notice('2', 10)]);
    notices.close();
    vi.advanceTimersByTime(100);
    expect(sent()).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('delays but never drops, duplicates or reorders the messages to a follower (property)', () => {
    const kinds = fc.constantFrom('notice', 'append', 'heartbeat', 'wait', 'proposed');
    const step = fc.record({ kind: kinds, to: fc.constantFrom('2', '3', '4'), ms: fc.integer({ min: 0, max: 3 }) });
    fc.assert(
      fc.property(fc.array(fc.array(step, { maxLength: 6 }), { maxLength: 40 }), (readies) => {
        const { notices, sent } = harness(2);
        const expected = new Map<string, Message[]>();
        let commit = 0;
        for (const ready of readies) {
          const batch: Message[] = [];
          for (const s of ready) {
            commit++;
            if (s.kind === 'wait') {
              vi.advanceTimersByTime(s.ms);
              continue;
            }
            if (s.kind === 'proposed') {
              notices.proposedBy(nodeId(s.to), commit);
              continue;
            }
            const m = s.kind === 'notice' ? notice(s.to, commit) : s.kind === 'append' ? append(s.to, commit, commit) : heartbeat(s.to, commit);
            batch.push(m);
            expected.set(s.to, [...(expected.get(s.to) ?? []), m]);
          }
          notices.send(batch);
        }
        vi.advanceTimersByTime(2);
        for (const to of ['2', '3', '4']) expect(sent().filter((m) => m.to === to)).toEqual(expected.get(to) ?? []);
        expect(vi.getTimerCount()).toBe(0);
      }),
    );
  });
});
