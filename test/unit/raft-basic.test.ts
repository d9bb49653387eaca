import { describe, expect, it } from 'vitest';
import {
  MemoryStorage,
  RawNode,
  SeededRandom,
  bootstrapStorage,
  decodeConfChange,
  nodeId,
  type Message,
  type NodeId,
} from '../../src/raft/index.js';

/** A tiny lock-step cluster: every message is delivered, in order, before the next tick. */
class LockStep {
  readonly nodes = new Map<NodeId, RawNode>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly applied = new Map<NodeId, string[]>();
  private queue: Message[] = [];

  constructor(ids: string[], seed = 1) {
    const voters = ids.map(nodeId);
    for (const [i, id] of voters.entries()) {
      const storage = new MemoryStorage();
      bootstrapStorage(storage, voters);
      this.storages.set(id, storage);
      this.applied.set(id, []);
      this.nodes.set(id, new RawNode({ id, storage, random: new SeededRandom(seed + i), electionTicks: 10 }));
    }
  }

  /** Runs ready cycles and deliveries until quiet (bounded). */
  settle(): void {
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const [id, node] of this.nodes) {
        if (!node.hasReady()) continue;
        busy = true;
        const rd = node.ready();
        const storage = this.storages.get(id)!;
        if (rd.snapshot) storage.applySnapshot(rd.snapshot);
        storage.append(rd.entries);
        if (rd.hardState) storage.setHardState(rd.hardState);
        this.queue.push(...rd.messages);
        for (const e of rd.committedEntries) {
          if (e.type === 'confChange') storage.setConfState(node.applyConfChange(decodeConfChange(e.data)));
          else if (e.data.length > 0) this.applied.get(id)!.push(new TextDecoder().decode(e.data));
        }
        node.advance();
      }
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        busy = true;
        this.nodes.get(m.to)?.step(m);
      }
      if (!busy) return;
    }
    throw new Error('cluster did not settle');
  }

  tickAll(times: number): void {
    for (let i = 0; i < times; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.settle();
    }
  }

  leaders(): NodeId[] {
    return [...this.nodes].filter(([, n]) => n.status().softState.role === 'leader').map(([id]) => id);
  }
}

describe('raft core in lock step', () => {
  it('elects exactly one leader and replicates a proposal to all', () => {
    const c = new LockStep(['a', 'b', 'c']);
    c.tickAll(30);
    const leaders = c.leaders();
    expect(leaders).toHaveLength(1);
    const leader = c.nodes.get(leaders[0])!;
    expect(leader.propose(new TextEncoder().encode('x=1')).accepted).toBe(true);
    c.settle();
    for (const id of c.nodes.keys()) expect(c.applied.get(id)).toEqual(['x=1']);
  });

  it('a follower forwards proposals to the leader', () => {
    const c = new LockStep(['a', 'b', 'c'], 7);
    c.tickAll(30);
    const follower = [...c.nodes].find(([id]) => !c.leaders().includes(id))![1];
    expect(follower.propose(new TextEncoder().encode('via-follower')).accepted).toBe(true);
    c.settle();
    for (const id of c.nodes.keys()) expect(c.applied.get(id)).toEqual(['via-follower']);
  });

  it('a forwarded proposal names the term its sender saw the leader in; a leader takes it only in that term', () => {
    const c = new LockStep(['a', 'b', 'c'], 7);
    c.tickAll(30);
    const leaderId = c.leaders()[0];
    const leader = c.nodes.get(leaderId)!;
    const [followerId, follower] = [...c.nodes].find(([id]) => id !== leaderId)!;
    const term = leader.status().hardState.term;
    expect(follower.propose(new TextEncoder().encode('p')).accepted).toBe(true);
    const forwarded = follower.ready().messages.find((m) => m.type === 'prop')!;
    follower.advance();
    expect(forwarded).toMatchObject({ to: leaderId, from: followerId, logTerm: term, term: 0 });
    // Sent for an earlier term (delayed, or to a leader since re-elected): dropped.
    const before = leader.lastIndex();
    leader.step({ ...forwarded, logTerm: term - 1 });
    expect(leader.lastIndex()).toBe(before);
    leader.step(forwarded);
    expect(leader.lastIndex()).toBe(before + 1);
    c.settle();
    for (const id of c.nodes.keys()) expect(c.applied.get(id)).toEqual(['p']);
  });

  it('rejects a proposal at once when there is no leader', () => {
    const c = new LockStep(['a', 'b', 'c']);
    const result = c.nodes.get(nodeId('a'))!.propose(new Uint8Array([1]));
    expect(result).toEqual({ accepted: false, reason: 'no-leader' });
  });

  it('serves a read index on leader and follower after a heartbeat round', () => {
    const c = new LockStep(['a', 'b', 'c'], 3);
    c.tickAll(30);
    const leaderId = c.leaders()[0];
    const leader = c.nodes.get(leaderId)!;
    leader.propose(new TextEncoder().encode('v'));
    c.settle();
    const commit = leader.status().hardState.commit;
    expect(leader.readIndex(new Uint8Array([9])).accepted).toBe(true);
    // The read state appears only after the quorum round, in a later Ready.
    const rd = leader.ready();
    expect(rd.readStates).toEqual([]);
    c.nodes.get(leaderId)!.advance();
    // Put the heartbeat messages back in play.
    for (const m of rd.messages) c.nodes.get(m.to)!.step(m);
    let seen: number | undefined;
    for (let i = 0; i < 10 && seen === undefined; i++) {
      for (const [id, n] of c.nodes) {
        if (!n.hasReady()) continue;
        const r = n.ready();
        c.storages.get(id)!.append(r.entries);
        if (r.hardState) c.storages.get(id)!.setHardState(r.hardState);
        if (id === leaderId && r.readStates.length > 0) seen = r.readStates[0].index;
        n.advance();
        for (const m of r.messages) c.nodes.get(m.to)!.step(m);
      }
    }
    expect(seen).toBe(commit);
  });
});
