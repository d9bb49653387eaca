import { nodeId, SeededRandom } from '../../src/raft/index.js';
import { Cluster, type ClusterOptions } from './cluster.js';

export interface RunOptions {
  readonly seed: number;
  /** Actions in the faulty phase (each is one delivery, drop, tick, Ready step, fault...). */
  readonly steps: number;
  /** Keep and print message-level trace lines (replays use it). */
  readonly traceMessages?: boolean;
}

export interface RunStats {
  readonly seed: number;
  readonly members: number;
  readonly steps: number;
  readonly leaderTerms: number;
  readonly committed: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly confChanges: number;
  readonly transfers: number;
  readonly snapshotsSent: number;
  /** Simulated ticks the healed cluster took to commit a new proposal. */
  readonly livenessTicks: number;
}

/** A run broke a safety or liveness property. The message says how to replay it. */
export class SimulationFailure extends Error {
  override readonly name = 'SimulationFailure';
  constructor(
    readonly seed: number,
    readonly step: number,
    cause: unknown,
    trace: string,
  ) {
    const reason = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(
      `simulation seed ${seed} failed at step ${step}: ${reason}\n` +
        `replay: npm run sim -- --seed ${seed}\n--- last events ---\n${trace}`,
    );
  }
}

/** The largest number of members a run may grow to (founders plus added ones). */
const MAX_MEMBERS = 7;

/**
 * One random run: a cluster of 3 to 5 members under a seeded schedule of
 * deliveries, drops, duplicates, delays, partitions (both and one way), crashes
 * and restarts, clock skew, proposals, reads, membership changes, leader
 * transfers and frequent snapshots; then everything heals and a new proposal
 * must commit within a bounded number of ticks.
 */
export function runSimulation(options: RunOptions): RunStats {
  const random = new SeededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T | undefined => (items.length === 0 ? undefined : items[random.nextInt(items.length)]);
  const memberCount = 3 + random.nextInt(3);
  const clusterOptions: ClusterOptions = {
    ids: Array.from({ length: memberCount }, (_, i) => `n${i + 1}`),
    seed: options.seed,
    electionTicks: 6 + random.nextInt(8),
    heartbeatTicks: 1 + random.nextInt(2),
    snapshotEvery: 3 + random.nextInt(10),
    snapshotKeep: random.nextInt(4),
    // Often one entry per append, so an old-term entry and the new leader's entry travel apart.
    maxSizePerMsgBytes: [1, 1, 48, 256, 4096][random.nextInt(5)],
    maxInflightMsgs: 1 + random.nextInt(8),
    traceMessages: options.traceMessages ?? false,
    traceLines: options.traceMessages ? 5000 : 300,
  };
  // How hard faults come: most runs are moderate, some are storms in which
  // leaders crash and get cut off again and again (what Figure 8 needs).
  const chaos = [0.5, 1, 1, 2, 4, 8][random.nextInt(6)];
  const cluster = new Cluster(clusterOptions);
  cluster.maxDelay = random.nextInt(4);
  for (const node of cluster.nodes.values()) node.rate = 0.7 + random.next() * 0.7;

  const stats = { crashes: 0, partitions: 0, confChanges: 0, transfers: 0, snapshotsSent: 0 };
  let nextMemberNumber = memberCount + 1;
  let proposalCount = 0;
  let step = 0;

  const ids = (): string[] => [...cluster.nodes.keys()];
  const aliveIds = (): string[] => cluster.alive().map((n) => n.id);

  // Weights are functions: work that is waiting (messages, Ready) is taken at
  // about the rate it appears, so the network drains instead of backing up,
  // while faults stay rare enough for the cluster to make progress between them.
  const deliverableCount = (): number => cluster.network.deliverable(cluster.now).length;
  const readyCount = (): number => cluster.alive().filter((n) => !n.pending && n.raw!.hasReady()).length;
  const pendingCount = (): number => cluster.alive().filter((n) => n.pending).length;
  const actions: Array<[() => number, () => void]> = [
    [() => 2 * deliverableCount(), () => {
      const f = pick(cluster.network.deliverable(cluster.now));
      if (f) {
        if (f.message.type === 'snap') stats.snapshotsSent++;
        cluster.deliver(f.seq);
      }
    }],
    [() => 3 * readyCount(), () => {
      const id = pick(aliveIds().filter((i) => !cluster.node(i).pending && cluster.node(i).raw?.hasReady()));
      if (id) cluster.beginReady(id, random.nextInt(4) > 0);
    }],
    [() => 3 * pendingCount(), () => {
      const id = pick(aliveIds().filter((i) => cluster.node(i).pending));
      if (id) cluster.finishReady(id);
    }],
    [() => 3, () => cluster.advanceTime()],
    [() => 2, () => {
      const id = pick(aliveIds());
      if (id) cluster.propose(id, `v${++proposalCount}`);
    }],
    [() => 0.5, () => {
      const id = pick(aliveIds());
      if (id) cluster.readIndex(id);
    }],
    [() => 0.6 * chaos, () => {
      const f = pick(cluster.network.all());
      if (f) cluster.drop(f.seq);
    }],
    [() => 0.3 * chaos, () => {
      const f = pick(cluster.network.all());
      if (f) cluster.duplicate(f.seq);
    }],
    [() => 0.06 * chaos, () => {
      stats.partitions++;
      const all = ids();
      const kind = random.nextInt(3);
      if (kind === 0) {
        const lone = pick(all)!;
        cluster.partition([lone], all.filter((i) => i !== lone));
      } else if (kind === 1) {
        const side = all.filter(() => random.nextInt(2) === 0);
        cluster.partition(side, all.filter((i) => !side.includes(i)));
      } else {
        const from = pick(all)!;
        const to = pick(all.filter((i) => i !== from))!;
        cluster.cutOneWay(from, to);
      }
    }],
    [() => (cluster.network.isPartitioned() ? 0.12 * chaos : 0), () => {
      if (cluster.network.isPartitioned()) cluster.heal();
    }],
    [() => 0.05 * chaos, () => {
      const down = ids().length - aliveIds().length;
      const id = pick(aliveIds());
      if (id && down < Math.floor(ids().length / 2)) {
        stats.crashes++;
        cluster.crash(id);
      }
    }],
    [() => 0.03 * chaos, () => {
      // The leader in particular: crash it, or cut it off from everyone.
      const leader = cluster.leader();
      if (!leader) return;
      if (random.nextInt(2) === 0 && ids().length - aliveIds().length < Math.floor(ids().length / 2)) {
        stats.crashes++;
        cluster.crash(leader.id);
      } else {
        stats.partitions++;
        cluster.partition([leader.id], ids().filter((i) => i !== leader.id));
      }
    }],
    [() => (cluster.alive().length < cluster.nodes.size ? 0.15 * chaos : 0), () => {
      const id = pick(ids().filter((i) => !cluster.node(i).alive));
      if (id) cluster.restart(id);
    }],
    [() => 0.05, () => {
      const leader = cluster.leader();
      const via = pick(aliveIds());
      if (!leader || !via) return;
      const { voters, learners } = leader.raw!.status().confState;
      const choice = random.nextInt(4);
      stats.confChanges++;
      if (choice <= 1 && cluster.nodes.size < MAX_MEMBERS) {
        const id = `n${nextMemberNumber++}`;
        cluster.addEmptyMember(id);
        cluster.proposeConfChange(via, { type: choice === 0 ? 'addLearner' : 'addNode', nodeId: nodeId(id) });
      } else if (choice === 2 && learners.length > 0) {
        cluster.proposeConfChange(via, { type: 'addNode', nodeId: pick(learners)! });
      } else if (choice === 3 && voters.length > 2) {
        cluster.proposeConfChange(via, { type: 'removeNode', nodeId: pick([...voters, ...learners])! });
      }
    }],
    [() => 0.03, () => {
      const leader = cluster.leader();
      const via = pick(aliveIds());
      if (!leader || !via) return;
      const target = pick(leader.raw!.status().confState.voters.filter((v) => v !== leader.id));
      if (target) {
        stats.transfers++;
        cluster.transferLeadership(via, target);
      }
    }],
  ];
  const chooseAction = (): (() => void) => {
    const weights = actions.map(([weight]) => weight());
    let r = random.next() * weights.reduce((sum, w) => sum + w, 0);
    for (const [i, w] of weights.entries()) {
      r -= w;
      if (r < 0) return actions[i][1];
    }
    return actions[0][1];
  };

  // Adversarial timing: a leader that has just advanced its commit index is now
  // and then crashed or cut off at once, before it can tell anyone (the moment at
  // which a wrong commit rule, as in Figure 8 of the Raft paper, does harm).
  let lastLeaderCommit = { id: '', term: 0, commit: 0 };
  const maybeStrikeLeader = (): void => {
    const leader = cluster.leader();
    if (!leader) return;
    const { id, term, commit } = leader;
    const advanced = lastLeaderCommit.id === id && lastLeaderCommit.term === term && commit > lastLeaderCommit.commit;
    lastLeaderCommit = { id, term, commit };
    if (!advanced || random.next() >= 0.01 * chaos) return;
    if (random.nextInt(2) === 0 && ids().length - aliveIds().length < Math.floor(ids().length / 2)) {
      stats.crashes++;
      cluster.crash(id);
    } else {
      stats.partitions++;
      cluster.partition([id], ids().filter((i) => i !== id));
    }
  };

  try {
    for (step = 1; step <= options.steps; step++) {
      chooseAction()();
      maybeStrikeLeader();
    }
    const livenessTicks = checkLiveness(cluster, `final-${options.seed}`);
    return {
      seed: options.seed,
      members: cluster.nodes.size,
      steps: options.steps,
      leaderTerms: cluster.invariants.leaderTermCount(),
      committed: cluster.invariants.committedIndex,
      livenessTicks,
      ...stats,
    };
  } catch (err) {
    throw new SimulationFailure(options.seed, step, err, cluster.trace.text());
  }
}

/** Heal everything and require a leader and a committed proposal within a bounded number of ticks. */
function checkLiveness(cluster: Cluster, data: string): number {
  cluster.heal();
  for (const node of cluster.nodes.values()) {
    if (!node.alive) cluster.restart(node.id);
    if (node.pending) cluster.finishReady(node.id);
  }
  cluster.maxDelay = 0;
  const electionTicks = cluster.electionTicks;
  const maxTicks = 50 * electionTicks;
  let proposedAt = -Infinity;
  for (let ticks = 0; ticks <= maxTicks; ticks++) {
    cluster.stabilize(1000);
    if (cluster.appliedData.has(data)) return ticks;
    const leader = cluster.leader();
    if (leader && ticks - proposedAt >= 2 * electionTicks) {
      if (cluster.propose(leader.id, data).accepted) proposedAt = ticks;
    }
    cluster.advanceTime();
  }
  throw new Error(`liveness: no proposal committed within ${maxTicks} ticks after healing (leader: ${cluster.leader()?.id ?? 'none'})`);
}
