import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeId, type NodeId } from '../../../src/raft/index.js';
import { bootstrapIfEmpty } from '../../../src/node/bootstrap.js';
import { MemberRegistry } from '../../../src/node/members.js';
import { RaftNode } from '../../../src/node/raft-node.js';
import { NotAcceptedError, OutcomeUnknownError } from '../../../src/node/waiters.js';
import { openMemberDb, type MemberDb } from '../../../src/storage/member-db.js';
import { RaftStore } from '../../../src/storage/raft-store.js';
import { MemoryNetwork, MemoryTransport } from '../../../src/transport/memory-transport.js';
import { SILENT_LOGGER } from '../../../src/transport/transport.js';
import { ListMachine, bytes, type ListState } from './list-machine.js';


interface TestMember {
  id: NodeId;
  dir: string;
  db: MemberDb;
  store: RaftStore;
  machine: ListMachine;
  node: RaftNode;
}

async function waitFor(what: string, condition: () => boolean, deadlineMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('RaftNode: the loop over LevelDB and a transport', () => {
  const network = new MemoryNetwork();
  const ids = ['a', 'b', 'c'].map((s) => nodeId(s.repeat(16)));
  const dirs = new Map<NodeId, string>();
  let running: TestMember[] = [];

  interface StartOptions {
    snapshotCount?: number;
    catchUp?: number;
    /** Runs once the state machine has read a snapshot image, before it writes it (throw to fail the restore there). */
    beforeRestoreWrite?: (image: ListState) => void;
    /** Runs when the Raft store is asked to record a snapshot. */
    onPersistSnapshot?: () => void;
    commitNoticeHoldMs?: number;
    tickMs?: number;
  }

  async function start(id: NodeId, options: StartOptions = {}): Promise<TestMember> {
    let dir = dirs.get(id);
    if (!dir) {
      dir = await mkdtemp(join(tmpdir(), 'cairn-node-'));
      dirs.set(id, dir);
    }
    const db = await openMemberDb(join(dir, 'db'));
    const store = await RaftStore.open(db);
    await bootstrapIfEmpty(db, store, ids.map((i) => ({ id: i, info: { name: i.slice(0, 1), peerUrls: [`mem://${i}`], clientUrls: [] } })));
    const onPersistSnapshot = options.onPersistSnapshot;
    if (onPersistSnapshot) {
      const persist = store.persist.bind(store);
      store.persist = async (input) => {
        if (input.snapshot) onPersistSnapshot();
        return persist(input);
      };
    }
    const members = await MemberRegistry.open(db);
    const machine = await ListMachine.open(db, options.beforeRestoreWrite);
    const node = new RaftNode({
      id,
      store,
      members,
      stateMachine: machine,
      transport: (hooks) => new MemoryTransport({ selfId: id, network, ...hooks }),
      snapshotDir: join(dir, 'snap'),
      tickMs: options.tickMs ?? 10,
      electionTicks: 10,
      ...(options.commitNoticeHoldMs === undefined ? {} : { commitNoticeHoldMs: options.commitNoticeHoldMs }),
      snapshotCount: options.snapshotCount ?? 1000,
      snapshotCatchUpEntries: options.catchUp ?? 100,
      logger: SILENT_LOGGER,
    });
    node.start();
    const member = { id, dir, db, store, machine, node };
    running.push(member);
    return member;
  }

  async function stop(member: TestMember): Promise<void> {
    running = running.filter((m) => m !== member);
    await member.node.close();
    await member.store.close();
    await member.db.close();
  }

  afterEach(async () => {
    for (const m of [...running]) await stop(m);
    for (const dir of dirs.values()) await rm(dir, { recursive: true, force: true });
    dirs.clear();
    network.heal();
    network.setDropFilter(undefined);
  });

  const leaderOf = (members: TestMember[]): TestMember | undefined => members.find((m) => m.node.status().softState.role === 'leader');

  it('elects a leader; a write through a follower is applied everywhere in order', async () => {
    const members = await Promise.all(ids.map((id) => start(id)));
    await waitFor('a leader', () => leaderOf(members) !== undefined);
    const follower = members.find((m) => m.node.status().softState.role !== 'leader')!;
    await waitFor('the follower to know the leader', () => follower.node.status().softState.lead !== '');
    const results = [];
    for (const v of ['x', 'y', 'z']) results.push(await follower.node.propose(bytes(v), AbortSignal.timeout(5000)));
    expect(results).toEqual([1, 2, 3]);
    await waitFor('all to apply', () => members.every((m) => m.machine.values.length === 3));
    for (const m of members) expect(m.machine.values).toEqual(['x', 'y', 'z']);
  });

  it('does not hold back the commit notice a follower waits for (its own proposal)', async () => {
    // Notices may be held a minute; a held one would leave only with the next heartbeat (every 100 ms here).
    const members = await Promise.all(ids.map((id) => start(id, { commitNoticeHoldMs: 60_000, tickMs: 100 })));
    await waitFor('a leader', () => leaderOf(members) !== undefined);
    const follower = members.find((m) => m.node.status().softState.role !== 'leader')!;
    await waitFor('the follower to know the leader', () => follower.node.status().softState.lead !== '');
    let heartbeats = 0;
    network.setDropFilter((m) => {
      if (m.to === follower.id && m.type === 'heartbeat') heartbeats++;
      return false;
    });
    // Right after a heartbeat, so the next one is about 100 ms away.
    await waitFor('a heartbeat', () => heartbeats > 0);
    const before = heartbeats;
    expect(await follower.node.propose(bytes('mine'), AbortSignal.timeout(5000))).toBe(1);
    expect(heartbeats).toBe(before);
    expect(follower.machine.values).toEqual(['mine']);
  });

  it('keeps acknowledged writes across a restart of every member', async () => {
    let members = await Promise.all(ids.map((id) => start(id)));
    await waitFor('a leader', () => leaderOf(members) !== undefined);
    const leader = leaderOf(members)!;
    for (let i = 0; i < 20; i++) await leader.node.propose(bytes(`v${i}`), AbortSignal.timeout(5000));
    for (const m of members) await stop(m);
    members = await Promise.all(ids.map((id) => start(id)));
    // The old leader applied all 20 before answering: they are in its database.
    expect(members.find((m) => m.id === leader.id)!.machine.values).toHaveLength(20);
    await waitFor('a leader after restart', () => leaderOf(members) !== undefined);
    await leaderOf(members)!.node.propose(bytes('after'), AbortSignal.timeout(5000));
    await waitFor('all to apply', () => members.every((m) => m.machine.values.length === 21));
    for (const m of members) expect(m.machine.values).toEqual([...Array.from({ length: 20 }, (_, i) => `v${i}`), 'after']);
  });

  it('a proposal whose entry the state machine already holds (an image ahead of the log) is answered outcome-unknown, not with no result', async () => {
    const members = await Promise.all(ids.map((id) => start(id)));
    await waitFor('a leader', () => leaderOf(members) !== undefined);
    const leader = leaderOf(members)!;
    await leader.node.propose(bytes('before'), AbortSignal.timeout(5000));
    // As after restoring a snapshot image taken later than the snapshot's own index:
    // the next entries are skipped by the state machine, which returns no result for them.
    leader.machine.appliedIndex += 5;
    await expect(leader.node.propose(bytes('skipped'), AbortSignal.timeout(5000))).rejects.toBeInstanceOf(OutcomeUnknownError);
  });

  it('a linearizable read barrier on a follower sees every acknowledged write', async () => {
    const members = await Promise.all(ids.map((id) => start(id)));
    await waitFor('a leader', () => leaderOf(members) !== undefined);
    const leader = leaderOf(members)!;
    const follower = members.find((m) => m !== leader)!;
    // A read barrier needs a leader to ask: the follower must have heard from it first.
    await waitFor('the follower to know the leader', () => follower.node.lead === leader.id);
    // The follower gets no appends while the write commits with the other two members.
    network.setDropFilter((m) => m.to === follower.id && m.type === 'app');
    await leader.node.propose(bytes('acknowledged'), AbortSignal.timeout(5000));
    expect(follower.machine.values).not.toContain('acknowledged');
    network.setDropFilter(undefined);
    await follower.node.readBarrier(AbortSignal.timeout(5000));
    expect(follower.machine.values).toContain('acknowledged');
  });

  it('a member that missed compacted entries catches up from a streamed snapshot', async () => {
    const members = await Promise.all(ids.map((id) => start(id, { snapshotCount: 5, catchUp: 1 })));
    await waitFor('a leader', () => leaderOf(members) !== undefined);
    const leader = leaderOf(members)!;
    const lagging = members.find((m) => m !== leader)!;
    await stop(lagging);
    for (let i = 0; i < 30; i++) await leader.node.propose(bytes(`s${i}`), AbortSignal.timeout(5000));
    await waitFor('the leader to compact', () => leader.store.memory.firstIndex() > 10);
    const back = await start(lagging.id, { snapshotCount: 5, catchUp: 1 });
    await waitFor('the lagging member to catch up', () => back.machine.values.length === 30);
    expect(back.machine.restores).toBe(1);
    expect(back.machine.values).toEqual(leader.machine.values);
  });

  it('answers "not accepted" without a leader, and "outcome unknown" when the deadline passes', async () => {
    const [a] = await Promise.all([start(ids[0])]);
    // Alone of three, it can never elect a leader.
    await expect(a.node.propose(bytes('nope'), AbortSignal.timeout(2000))).rejects.toBeInstanceOf(NotAcceptedError);
    const b = await start(ids[1]);
    await waitFor('a leader', () => leaderOf([a, b]) !== undefined);
    const leader = leaderOf([a, b])!;
    const other = leader === a ? b : a;
    network.isolate(other.id);
    await waitFor('the leader to step down', () => leader.node.status().softState.role !== 'leader', 5000);
    // A proposal to the old leader may still commit later: unknown, not failed.
    const r = leader.node.propose(bytes('maybe'), AbortSignal.timeout(300));
    await expect(r).rejects.toSatisfy((e: unknown) => e instanceof OutcomeUnknownError || e instanceof NotAcceptedError);
  });

  const count = (values: readonly string[], v: string): number => values.filter((x) => x === v).length;

  /** Three members with a leader, and a follower that knows it; `third` is the other follower. */
  async function threeWithLeader(options: StartOptions = {}): Promise<{ members: TestMember[]; old: TestMember; follower: TestMember; third: TestMember }> {
    const members = await Promise.all(ids.map((id) => start(id, options)));
    await waitFor('a leader', () => leaderOf(members) !== undefined);
    const old = leaderOf(members)!;
    const [follower, third] = members.filter((m) => m !== old);
    await waitFor('the follower to know the leader', () => follower.node.lead === old.id);
    return { members, old, follower, third };
  }

  async function expectAppliedOnce(members: TestMember[], value: string, through: TestMember): Promise<void> {
    await through.node.propose(bytes('marker'), AbortSignal.timeout(5000));
    await waitFor('all to apply the marker', () => members.every((m) => m.machine.values.includes('marker')));
    for (const m of members) expect(count(m.machine.values, value), `member ${m.id.slice(0, 1)}`).toBe(1);
  }

  it('a write forwarded to a leader that is cut off is proposed again to the next leader and applied once, before its deadline', async () => {
    const { members, old, follower } = await threeWithLeader();
    network.isolate(old.id);
    // Forwarded to the old leader and lost with it: only a retry in the next term can apply it.
    const started = Date.now();
    const result = await follower.node.propose(bytes('once'), AbortSignal.timeout(8000));
    expect(Date.now() - started, 'answered well before the 8 s deadline').toBeLessThan(4000);
    expect(follower.node.lostProposalsRetried).toBeGreaterThan(0);
    expect(result).toBe(follower.machine.values.indexOf('once') + 1);
    network.heal();
    await expectAppliedOnce(members, 'once', follower);
  });

  it("a leader's own write that is lost with its leadership is proposed again through the next leader and applied once", async () => {
    const { members, old } = await threeWithLeader();
    network.isolate(old.id);
    // Appended at the old leader in its term, never replicated: the next leader overwrites it.
    const write = old.node.propose(bytes('once'), AbortSignal.timeout(8000));
    const others = members.filter((m) => m !== old);
    await waitFor('a new leader', () => leaderOf(others) !== undefined);
    network.heal();
    expect(await write).toBe(old.machine.values.indexOf('once') + 1);
    expect(old.node.lostProposalsRetried).toBeGreaterThan(0);
    await expectAppliedOnce(members, 'once', old);
  });

  it('a write whose deadline passed before it was proposed is refused (nothing happened) and never applied', async () => {
    const { members, old } = await threeWithLeader();
    const expired = new AbortController();
    expired.abort();
    await expect(old.node.propose(bytes('late'), expired.signal)).rejects.toBeInstanceOf(NotAcceptedError);
    await old.node.propose(bytes('marker'), AbortSignal.timeout(5000));
    await waitFor('all to apply the marker', () => members.every((m) => m.machine.values.includes('marker')));
    for (const m of members) expect(count(m.machine.values, 'late'), `member ${m.id.slice(0, 1)}`).toBe(0);
  });

  it('a read waiting on a leader that hands over without a gap is asked again of the next leader', async () => {
    const { old, follower, third: next } = await threeWithLeader();
    // The read to the old leader is lost, and the follower misses the election, so it
    // goes straight from the old leader to the next without a moment with no leader.
    network.setDropFilter((m) => (m.type === 'readIndex' && m.to === old.id) || (m.to === follower.id && (m.type === 'vote' || m.type === 'preVote')));
    const started = Date.now();
    const read = follower.node.readBarrier(AbortSignal.timeout(8000));
    old.node.transferLeadership(next.id);
    await read;
    expect(Date.now() - started, 'answered well before the 8 s deadline').toBeLessThan(4000);
    expect(follower.node.lead).toBe(next.id);
  });

  it('a write that may be inside a snapshot the member installs is answered outcome-unknown, never proposed again', async () => {
    const { members, old, follower, third: next } = await threeWithLeader({ snapshotCount: 5, catchUp: 1 });
    // The follower's write commits with the other two, but no append reaches the follower.
    network.setDropFilter((m) => m.to === follower.id && (m.type === 'app' || m.type === 'snap'));
    const write = follower.node.propose(bytes('inside'), AbortSignal.timeout(20_000));
    await waitFor('the write to commit without the follower', () => next.machine.values.includes('inside'));
    // A later term, and the log compacted past the write: the follower must take a snapshot holding it.
    old.node.transferLeadership(next.id);
    await waitFor('the next leader', () => leaderOf(members) === next);
    for (let i = 0; i < 12; i++) await next.node.propose(bytes(`n${i}`), AbortSignal.timeout(5000));
    await waitFor('the new leader to compact past the write', () => next.store.memory.firstIndex() > next.machine.values.indexOf('inside') + 2);
    network.setDropFilter(undefined);
    await expect(write).rejects.toBeInstanceOf(OutcomeUnknownError);
    await waitFor('the follower to install the snapshot', () => follower.machine.restores === 1);
    expect(follower.node.lostProposalsRetried).toBe(0);
    await expectAppliedOnce(members, 'inside', next);
  });

  // Regression (965be29): a member installing a snapshot from the leader must have the
  // state machine take the image BEFORE the Raft store records the snapshot. The other
  // way round, a member killed in between restarts with a log that says the snapshot is
  // installed over a state that does not hold it (the entries below it are never replayed).
  /** Three members; one is stopped while the leader writes and compacts past it, so it must catch up from a snapshot. */
  async function laggingMember(): Promise<{ leader: TestMember; lagging: NodeId }> {
    const members = await Promise.all(ids.map((id) => start(id, { snapshotCount: 5, catchUp: 1 })));
    await waitFor('a leader', () => members.some((m) => m.node.status().softState.role === 'leader'));
    const leader = members.find((m) => m.node.status().softState.role === 'leader')!;
    const lagging = members.find((m) => m !== leader)!;
    await stop(lagging);
    for (let i = 0; i < 30; i++) await leader.node.propose(bytes(`s${i}`), AbortSignal.timeout(5000));
    await waitFor('the leader to compact its log', () => leader.store.memory.firstIndex() > 10);
    return { leader, lagging: lagging.id };
  }

  it('the state machine has taken the image before the Raft store records the snapshot', async () => {
    const { leader, lagging } = await laggingMember();
    const events: string[] = [];
    const back = await start(lagging, {
      snapshotCount: 5,
      catchUp: 1,
      beforeRestoreWrite: () => events.push('state machine takes the image'),
      onPersistSnapshot: () => events.push('raft store records the snapshot'),
    });
    // restore() sets the values before the store records the snapshot: wait for both.
    await waitFor('the snapshot to be recorded', () => events.includes('raft store records the snapshot'));
    await waitFor('the lagging member to catch up', () => back.machine.values.length === 30);
    expect(back.machine.values).toEqual(leader.machine.values);
    expect(events.slice(0, 2)).toEqual(['state machine takes the image', 'raft store records the snapshot']);
  });

  it('killed while the state machine takes the image, it restarts with no snapshot recorded over a state without it', async () => {
    const { lagging } = await laggingMember();
    let image: ListState | undefined;
    const back = await start(lagging, {
      snapshotCount: 5,
      catchUp: 1,
      beforeRestoreWrite: (taken) => {
        image = taken;
        throw new Error('simulated kill while restoring the image');
      },
    });
    await waitFor('the snapshot to reach the state machine', () => image !== undefined);
    // The Ready that carried the snapshot is finished (its loop stopped on the failure) once close() returns.
    await stop(back);

    // Restart: read what the kill left on disk.
    const db = await openMemberDb(join(dirs.get(lagging)!, 'db'));
    let store: RaftStore | undefined;
    try {
      store = await RaftStore.open(db);
      const machine = await ListMachine.open(db);
      const recorded = store.memory.snapshot().metadata.index;
      expect(image!.appliedIndex, 'the image is ahead of what the member had').toBeGreaterThan(machine.appliedIndex);
      expect(recorded, `the log records a snapshot at ${recorded}; the state machine holds entries up to ${machine.appliedIndex}`).toBeLessThanOrEqual(machine.appliedIndex);
    } finally {
      await store?.close();
      await db.close();
    }
  });
});
