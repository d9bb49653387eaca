import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeMessage, nodeId } from '../../src/raft/index.js';
import { Cluster, type ClusterOptions } from './cluster.js';

// The classic cases, each run step by step with every message in the trace.
// The trace is checked in (test/sim/traces/<name>.trace) so a change in the
// core's behaviour shows up as a readable diff; regenerate on purpose with
//   UPDATE_TRACES=1 npx vitest run test/sim/scenarios.test.ts
// Each scenario also asserts the point it makes, so a regenerated trace cannot
// hide a wrong outcome.

const TRACE_DIR = new URL('./traces/', import.meta.url);

function expectTrace(name: string, cluster: Cluster): void {
  const actual = cluster.trace.text() + '\n';
  const file = new URL(`${name}.trace`, TRACE_DIR);
  if (process.env.UPDATE_TRACES) {
    mkdirSync(TRACE_DIR, { recursive: true });
    writeFileSync(file, actual);
  }
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

function newCluster(ids: string[], extra: Partial<ClusterOptions> = {}): Cluster {
  return new Cluster({ ids, seed: 7, traceMessages: true, traceLines: 10_000, ...extra });
}

/** Ticks every live member until `done` holds (at most `maxTicks` units of time). */
function tickUntil(cluster: Cluster, done: () => boolean, maxTicks = 200): void {
  for (let t = 0; t < maxTicks; t++) {
    cluster.stabilize();
    if (done()) return;
    cluster.advanceTime();
  }
  throw new Error('condition not reached in time');
}

/** Lock-step rounds (every member handles its Ready, then every message is delivered) until `done` holds. */
function roundsUntil(cluster: Cluster, done: () => boolean, maxRounds = 50): void {
  for (let i = 0; i < maxRounds && !done(); i++) {
    for (const id of cluster.nodes.keys()) cluster.processReady(id);
    cluster.deliverAll();
  }
  if (!done()) throw new Error(`condition not reached in ${maxRounds} rounds\n${cluster.trace.text().split("\n").slice(-40).join("\n")}`);
}

function electLeader(cluster: Cluster, id: string): void {
  cluster.stabilize(); // apply the founding conf changes first: until then nobody may campaign
  cluster.campaign(id);
  cluster.stabilize();
  expect(cluster.node(id).role).toBe('leader');
}

describe('scripted scenarios', () => {
  it('Figure 8: an entry of an old term on a majority is not committed by counting', () => {
    // As in the paper: no PreVote or CheckQuorum, one entry per append message.
    const c = newCluster(['n1', 'n2', 'n3', 'n4', 'n5'], { preVote: false, checkQuorum: false, maxSizePerMsgBytes: 1 });
    electLeader(c, 'n1'); // term 2; its empty entry is 6
    // (a) n1 replicates entry 7 (term 2) to n2 only.
    c.partition(['n1', 'n2'], ['n3', 'n4', 'n5']);
    c.propose('n1', 'from-term-2');
    c.stabilize();
    expect(c.node('n2').raw!.logTerm(7)).toBe(2);
    // (b) n1 crashes; n5 wins term 3 with n3 and n4, appends its entry 7 (term 3) and crashes before sending it.
    c.crash('n1');
    c.heal();
    c.partition(['n2'], ['n3', 'n4', 'n5']);
    c.campaign('n5');
    roundsUntil(c, () => c.node('n5').role === 'leader');
    c.partition(['n5'], ['n1', 'n2', 'n3', 'n4']);
    c.propose('n5', 'from-term-3');
    c.stabilize();
    expect(c.node('n5').raw!.logTerm(7)).toBe(3);
    c.crash('n5');
    // (c) n1 restarts and wins term 4. It reaches n3 and n4 only, and sends its
    // log one entry per message: each first rejects (8, term 4), then takes entry 7.
    c.heal();
    c.restart('n1');
    c.campaign('n1'); // term 3: n3 and n4 already voted for n5 in it
    c.stabilize();
    c.campaign('n1'); // term 4
    roundsUntil(c, () => c.node('n1').role === 'leader');
    expect(c.node('n1').term).toBe(4);
    c.cutOneWay('n1', 'n2');
    const matchOf = (id: string): number => c.node('n1').raw!.status().progress?.get(nodeId(id))?.match ?? 0;
    roundsUntil(c, () => matchOf('n3') >= 7 && matchOf('n4') >= 7);
    expect(c.node('n3').raw!.logTerm(8)).toBeUndefined();
    expect(c.node('n4').raw!.logTerm(8)).toBeUndefined();
    // n1 knows entry 7 (term 2) is on n1, n3 and n4, a majority, yet it must not
    // commit it: it is not of n1's term.
    expect(c.node('n1').commit).toBe(6);
    c.trace.add(c.now, `n1 knows entry 7 of term 2 is on n1, n3, n4; n1 commit is ${c.node('n1').commit}`);
    // (d) n1 crashes before its own entry (8, term 4) reaches anyone; n5 restarts
    // and wins with n2, n3 and n4 (its last entry, term 3, is newer than theirs), and
    // overwrites entry 7 everywhere: no harm done, because it was never committed.
    // (Had n1 committed it by counting, the checker would stop here: a committed entry changed.)
    c.crash('n1');
    c.heal();
    c.restart('n5');
    c.campaign('n5'); // term 4: taken by n1
    c.stabilize();
    c.campaign('n5'); // term 5: its last entry (7, term 3) is newer than theirs (7, term 2)
    roundsUntil(c, () => c.node('n5').role === 'leader');
    c.stabilize();
    for (const id of ['n2', 'n3', 'n4', 'n5']) expect(c.node(id).raw!.logTerm(7)).toBe(3);
    expect(c.appliedData.has('from-term-3')).toBe(true);
    expect(c.appliedData.has('from-term-2')).toBe(false);
    expectTrace('figure-8', c);
  });

  it('PreVote: a partitioned member that rejoins does not disrupt the leader', () => {
    const c = newCluster(['n1', 'n2', 'n3']);
    electLeader(c, 'n1');
    const term = c.node('n1').term;
    c.partition(['n3'], ['n1', 'n2']);
    for (let i = 0; i < 5 * c.electionTicks; i++) c.tick('n3');
    c.stabilize();
    // n3 timed out repeatedly, but a lost pre-vote does not raise its term.
    expect(c.node('n3').term).toBe(term);
    c.heal();
    tickUntil(c, () => c.node('n3').lead === c.node('n1').id);
    expect(c.node('n1').role).toBe('leader');
    expect(c.node('n1').term).toBe(term);
    expectTrace('prevote-rejoin', c);
  });

  it('CheckQuorum: a leader cut off from its quorum steps down', () => {
    const c = newCluster(['n1', 'n2', 'n3']);
    electLeader(c, 'n1');
    c.partition(['n1'], ['n2', 'n3']);
    for (let i = 0; i < 2 * c.electionTicks && c.node('n1').role === 'leader'; i++) c.tick('n1');
    c.stabilize();
    expect(c.node('n1').role).toBe('follower');
    tickUntil(c, () => c.leader() !== undefined && c.leader()!.id !== 'n1');
    expect(c.leader()!.term).toBeGreaterThan(c.node('n1').term - 1);
    expectTrace('checkquorum-step-down', c);
  });

  it('removing the leader: it steps down and the others go on without it', () => {
    const c = newCluster(['n1', 'n2', 'n3']);
    electLeader(c, 'n1');
    expect(c.proposeConfChange('n1', { type: 'removeNode', nodeId: nodeId('n1') }).accepted).toBe(true);
    c.stabilize();
    expect(c.node('n1').role).toBe('follower');
    expect(c.node('n2').raw!.status().confState.voters).toEqual(['n2', 'n3']);
    tickUntil(c, () => c.leader() !== undefined);
    const leader = c.leader()!;
    expect(['n2', 'n3']).toContain(leader.id);
    c.propose(leader.id, 'after-removal');
    c.stabilize();
    expect(c.appliedData.has('after-removal')).toBe(true);
    expectTrace('remove-leader', c);
  });

  it('a learner catches up but never votes and never counts toward commit', () => {
    const c = newCluster(['n1', 'n2', 'n3']);
    electLeader(c, 'n1');
    c.addEmptyMember('n4');
    c.proposeConfChange('n1', { type: 'addLearner', nodeId: nodeId('n4') });
    c.propose('n1', 'before');
    c.stabilize();
    expect(c.node('n4').raw!.status().confState.learners).toEqual(['n4']);
    expect(c.node('n4').machine.applied).toBe(c.node('n1').machine.applied);
    // A vote request reaching the learner is refused.
    const term = c.node('n4').term + 1;
    c.inject(makeMessage({ type: 'vote', from: nodeId('n2'), to: nodeId('n4'), term, index: 100, logTerm: term }));
    c.stabilize();
    // With two voters down, the leader and the learner are not a quorum: nothing commits.
    c.crash('n2');
    c.crash('n3');
    const commit = c.node('n1').commit;
    c.propose('n1', 'needs-a-quorum');
    c.stabilize();
    expect(c.node('n4').raw!.logTerm(c.node('n1').lastIndex)).toBeDefined();
    expect(c.node('n1').commit).toBe(commit);
    // However long it waits, the learner never campaigns.
    for (let i = 0; i < 5 * c.electionTicks; i++) c.tick('n4');
    c.stabilize();
    expect(c.node('n4').role).toBe('follower');
    expectTrace('learner-does-not-vote', c);
  });

  it('leader transfer to a lagging member: catch it up, then TimeoutNow', () => {
    const c = newCluster(['n1', 'n2', 'n3']);
    electLeader(c, 'n1');
    c.cutOneWay('n1', 'n3');
    for (let i = 0; i < 3; i++) c.propose('n1', `while-n3-lags-${i}`);
    c.stabilize();
    expect(c.node('n3').lastIndex).toBeLessThan(c.node('n1').lastIndex);
    c.heal();
    const term = c.node('n1').term;
    c.transferLeadership('n1', 'n3');
    c.stabilize();
    expect(c.node('n3').role).toBe('leader');
    expect(c.node('n3').term).toBe(term + 1);
    expect(c.node('n1').role).toBe('follower');
    expectTrace('transfer-to-lagging', c);
  });

  it('a follower that missed compacted entries is restored from a snapshot', () => {
    const c = newCluster(['n1', 'n2', 'n3'], { snapshotEvery: 4 });
    electLeader(c, 'n1');
    c.crash('n3');
    for (let i = 0; i < 10; i++) c.propose('n1', `entry-${i}`);
    c.stabilize();
    expect(c.node('n1').raw!.status().firstIndex).toBeGreaterThan(c.node('n3').disk.lastIndex() + 1);
    c.restart('n3');
    tickUntil(c, () => c.node('n3').machine.applied === c.node('n1').machine.applied);
    expect(c.node('n3').disk.snapshot().metadata.index).toBeGreaterThan(0);
    expect(c.node('n3').machine.hash).toBe(c.node('n1').machine.hash);
    expectTrace('restore-from-snapshot', c);
  });
});
