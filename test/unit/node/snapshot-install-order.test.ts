import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootstrapIfEmpty } from '../../../src/node/bootstrap.js';
import { MemberRegistry } from '../../../src/node/members.js';
import { RaftNode, type CommittedCommand, type StateMachine } from '../../../src/node/raft-node.js';
import { nodeId, type NodeId } from '../../../src/raft/index.js';
import { openMemberDb, sublevel, type BatchOp, type MemberDb, type SubDb } from '../../../src/storage/member-db.js';
import { RaftStore } from '../../../src/storage/raft-store.js';
import { MemoryNetwork, MemoryTransport } from '../../../src/transport/memory-transport.js';
import { SILENT_LOGGER } from '../../../src/transport/transport.js';

// Regression (commit 965be29): a follower installing a snapshot from the leader must
// have the state machine take the image BEFORE the Raft store records the snapshot.
// The other way round, a member killed in between restarts with a log that says the
// snapshot is installed over a state that does not hold it (entries below the
// snapshot are never replayed: the member is silently missing them).

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const STATE_KEY = bytes('state');

interface ListState {
  appliedIndex: number;
  values: string[];
}

/** A list of strings as the replicated state, kept durably in one key; restore() can be made to fail. */
class ListMachine implements StateMachine {
  appliedIndex = 0;
  values: string[] = [];
  private constructor(
    private readonly db: MemberDb,
    private readonly section: SubDb,
    private readonly beforeRestoreWrite: (image: ListState) => void,
  ) {}

  static async open(db: MemberDb, beforeRestoreWrite: (image: ListState) => void = () => undefined): Promise<ListMachine> {
    const machine = new ListMachine(db, sublevel(db, 'test-list'), beforeRestoreWrite);
    const raw = await machine.section.get(STATE_KEY);
    if (raw) Object.assign(machine, JSON.parse(text(raw)) as ListState);
    return machine;
  }

  async apply(commands: readonly CommittedCommand[], extraOps: BatchOp[]): Promise<readonly unknown[]> {
    const results: unknown[] = [];
    const values = [...this.values];
    let applied = this.appliedIndex;
    for (const c of commands) {
      if (c.index <= applied) {
        results.push(undefined);
        continue;
      }
      applied = c.index;
      if (c.command) values.push(text(c.command));
      results.push(c.command ? values.length : undefined);
    }
    await this.db.batch([...extraOps, { type: 'put', sublevel: this.section, key: STATE_KEY, value: bytes(JSON.stringify({ appliedIndex: applied, values })) }]);
    this.values = values;
    this.appliedIndex = applied;
    return results;
  }

  async *snapshot(): AsyncIterable<Uint8Array> {
    yield bytes(JSON.stringify({ appliedIndex: this.appliedIndex, values: this.values }));
  }

  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(Buffer.from(c));
    const image = JSON.parse(Buffer.concat(parts).toString('utf8')) as ListState;
    this.beforeRestoreWrite(image);
    await this.section.put(STATE_KEY, bytes(JSON.stringify(image)));
    this.appliedIndex = image.appliedIndex;
    this.values = image.values;
  }
}

interface TestMember {
  readonly id: NodeId;
  readonly db: MemberDb;
  readonly store: RaftStore;
  readonly machine: ListMachine;
  readonly node: RaftNode;
}

/** Hooks for the member that will receive the snapshot. */
interface MemberHooks {
  readonly beforeRestoreWrite?: (image: ListState) => void;
  readonly onPersistSnapshot?: () => void;
}

async function waitFor(what: string, condition: () => boolean, deadlineMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('RaftNode installing a snapshot from the leader', () => {
  const network = new MemoryNetwork();
  const ids = ['a', 'b', 'c'].map((s) => nodeId(s.repeat(16)));
  const dirs = new Map<NodeId, string>();
  let running: TestMember[] = [];

  async function start(id: NodeId, hooks: MemberHooks = {}): Promise<TestMember> {
    let dir = dirs.get(id);
    if (!dir) {
      dir = await mkdtemp(join(tmpdir(), 'cairn-snap-order-'));
      dirs.set(id, dir);
    }
    const db = await openMemberDb(join(dir, 'db'));
    const store = await RaftStore.open(db);
    await bootstrapIfEmpty(db, store, ids.map((i) => ({ id: i, info: { name: i.slice(0, 1), peerUrls: [`mem://${i}`], clientUrls: [] } })));
    if (hooks.onPersistSnapshot) {
      const persist = store.persist.bind(store);
      store.persist = async (input) => {
        if (input.snapshot) hooks.onPersistSnapshot!();
        return persist(input);
      };
    }
    const members = await MemberRegistry.open(db);
    const machine = await ListMachine.open(db, hooks.beforeRestoreWrite);
    const node = new RaftNode({
      id,
      store,
      members,
      stateMachine: machine,
      transport: (callbacks) => new MemoryTransport({ selfId: id, network, ...callbacks }),
      snapshotDir: join(dir, 'snap'),
      tickMs: 10,
      electionTicks: 10,
      snapshotCount: 5,
      snapshotCatchUpEntries: 1,
      logger: SILENT_LOGGER,
    });
    node.start();
    const member = { id, db, store, machine, node };
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
  });

  /** Three members; one is stopped while the leader writes and compacts past it, so it must catch up from a snapshot. */
  async function laggingMember(): Promise<{ leader: TestMember; lagging: NodeId }> {
    const members = await Promise.all(ids.map((id) => start(id)));
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
