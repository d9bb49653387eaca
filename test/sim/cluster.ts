import {
  MemoryStorage,
  RawNode,
  SeededRandom,
  bootstrapStorage,
  decodeConfChange,
  nodeId,
  type ConfChange,
  type Message,
  type NodeId,
  type ProposalResult,
  type Ready,
} from '../../src/raft/index.js';
import { Invariants, type MemberView } from './invariants.js';
import { EMPTY_MACHINE, applyEntry, decodeMachine, encodeMachine, type MachineState } from './machine.js';
import { Network } from './network.js';
import { Trace, describeMessage } from './trace.js';

export interface ClusterOptions {
  readonly ids: readonly string[];
  readonly seed: number;
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  /** Take a snapshot every this many applied entries (0 = never). */
  readonly snapshotEvery?: number;
  /** How many applied entries to keep in the log behind a snapshot. */
  readonly snapshotKeep?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly maxSizePerMsgBytes?: number;
  readonly maxInflightMsgs?: number;
  /** Lines of trace kept (a ring); 0 keeps none. */
  readonly traceLines?: number;
  /** Record message deliveries in the trace (scenarios do; random runs only on replay). */
  readonly traceMessages?: boolean;
}

/** One simulated member: its core (absent while crashed), its "disk" and its state machine. */
export class SimNode {
  raw: RawNode | undefined;
  readonly disk = new MemoryStorage();
  machine: MachineState = EMPTY_MACHINE;
  /** A Ready taken but not yet persisted: lost if the member crashes now. */
  pending: { readonly ready: Ready; readonly sentEarly: ReadonlySet<Message> } | undefined;
  incarnation = 0;
  /** Ticks per unit of simulated time (clock skew) and the fraction carried over. */
  rate = 1;
  clockCarry = 0;

  constructor(readonly id: NodeId) {}

  get alive(): boolean {
    return this.raw !== undefined;
  }
  get role(): string {
    return this.raw ? this.raw.status().softState.role : 'down';
  }
  get term(): number {
    return this.raw ? this.raw.status().hardState.term : this.disk.initialState().hardState.term;
  }
  get commit(): number {
    return this.raw ? this.raw.status().hardState.commit : this.disk.initialState().hardState.commit;
  }
  get lastIndex(): number {
    return this.raw ? this.raw.status().lastIndex : this.disk.lastIndex();
  }
  get lead(): NodeId | undefined {
    return this.raw?.status().softState.lead;
  }

  durableTerm(index: number): number | undefined {
    if (index < this.disk.firstIndex() - 1 || index > this.disk.lastIndex()) return undefined;
    return this.disk.term(index);
  }

  /** What the invariant checker sees of this member now (one status() call). */
  view(): MemberView {
    const raw = this.raw;
    const disk = this.disk;
    const durable = {
      durableTerm: (index: number) => this.durableTerm(index),
      durableSnapshotIndex: () => disk.snapshot().metadata.index,
    };
    if (!raw) {
      const hs = disk.initialState().hardState;
      return { id: this.id, alive: false, role: 'down', term: hs.term, commit: hs.commit, isLearner: false, voters: [], firstIndex: 0, lastIndex: 0, logTerm: () => undefined, ...durable };
    }
    const st = raw.status();
    return {
      id: this.id,
      alive: true,
      role: st.softState.role,
      term: st.hardState.term,
      commit: st.hardState.commit,
      isLearner: st.confState.learners.includes(this.id),
      voters: st.confState.voters,
      firstIndex: st.firstIndex,
      lastIndex: st.lastIndex,
      logTerm: (index: number) => raw.logTerm(index),
      ...durable,
    };
  }
}

/**
 * Members over the simulated network, driven one explicit action at a time.
 * The random schedule (random-run.ts) and the scripted scenarios share it, and
 * every action ends with the invariant checks.
 */
export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly network = new Network();
  readonly invariants = new Invariants();
  readonly trace: Trace;
  now = 0;
  /** The data of every normal entry any member applied (liveness looks for its proposal here). */
  readonly appliedData = new Set<string>();
  private readonly options: Required<ClusterOptions>;
  private readonly random: SeededRandom;
  private readCount = 0;

  constructor(options: ClusterOptions) {
    this.options = {
      electionTicks: 10,
      heartbeatTicks: 1,
      snapshotEvery: 0,
      snapshotKeep: 0,
      preVote: true,
      checkQuorum: true,
      maxSizePerMsgBytes: 1024 * 1024,
      maxInflightMsgs: 256,
      traceLines: 400,
      traceMessages: false,
      ...options,
    };
    this.random = new SeededRandom(options.seed);
    this.trace = new Trace(this.options.traceLines);
    const voters = options.ids.map(nodeId);
    for (const id of voters) {
      const node = new SimNode(id);
      bootstrapStorage(node.disk, voters);
      this.nodes.set(id, node);
      this.start(node);
    }
    this.check();
  }

  get electionTicks(): number {
    return this.options.electionTicks;
  }

  node(id: string): SimNode {
    const node = this.nodes.get(nodeId(id));
    if (!node) throw new Error(`no member ${id}`);
    return node;
  }

  private start(node: SimNode): void {
    node.incarnation++;
    node.raw = new RawNode({
      id: node.id,
      storage: node.disk,
      random: new SeededRandom((this.options.seed * 7919 + hashId(node.id) * 31 + node.incarnation) >>> 0),
      applied: node.machine.applied,
      electionTicks: this.options.electionTicks,
      heartbeatTicks: this.options.heartbeatTicks,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
      maxSizePerMsgBytes: this.options.maxSizePerMsgBytes,
      maxInflightMsgs: this.options.maxInflightMsgs,
    });
  }

  /** Runs the invariant checks; every public action ends with it. */
  check(): void {
    this.invariants.afterStep([...this.nodes.values()].map((n) => n.view()));
  }

  // ---- clocks --------------------------------------------------------------------

  tick(id: string, times = 1): void {
    const node = this.node(id);
    for (let i = 0; i < times && node.raw; i++) node.raw.tick();
    this.check();
  }

  /** One unit of simulated time: each live member ticks by its own rate (clock skew). */
  advanceTime(): void {
    this.now++;
    for (const node of this.nodes.values()) {
      if (!node.raw) continue;
      node.clockCarry += node.rate;
      while (node.clockCarry >= 1) {
        node.clockCarry -= 1;
        node.raw.tick();
      }
    }
    this.check();
  }

  // ---- the Ready cycle ---------------------------------------------------------------

  /** Takes a Ready. A leader's appends leave at once (Raft thesis §10.2.1); the rest waits for persistence. */
  beginReady(id: string, sendAppendsEarly = true): boolean {
    const node = this.node(id);
    if (!node.raw || node.pending || !node.raw.hasReady()) return false;
    const ready = node.raw.ready();
    if (ready.softState) this.trace.add(this.now, `${node.id} is ${ready.softState.role}${ready.softState.lead ? ` (leader ${ready.softState.lead})` : ''} in term ${node.term}`);
    const sentEarly = new Set<Message>();
    if (sendAppendsEarly && node.role === 'leader') {
      for (const m of ready.messages) if (m.type === 'app') sentEarly.add(m);
      this.send(node, [...sentEarly]);
    }
    node.pending = { ready, sentEarly };
    this.check();
    return true;
  }

  /** Persists the taken Ready, sends what it holds, applies and advances. */
  finishReady(id: string): boolean {
    const node = this.node(id);
    if (!node.raw || !node.pending) return false;
    const { ready, sentEarly } = node.pending;
    node.pending = undefined;
    this.persist(node, ready);
    this.send(
      node,
      ready.messages.filter((m) => !sentEarly.has(m)),
    );
    this.apply(node, ready);
    for (const rs of ready.readStates) this.invariants.onReadState(node.id, rs);
    for (const rs of ready.readStates) this.trace.add(this.now, `${node.id} read ${new TextDecoder().decode(rs.context)} at index ${rs.index}`);
    node.raw.advance();
    this.check();
    return true;
  }

  processReady(id: string): boolean {
    if (!this.beginReady(id)) return false;
    return this.finishReady(id);
  }

  private persist(node: SimNode, ready: Ready): void {
    if (ready.snapshot) node.disk.applySnapshot(ready.snapshot);
    node.disk.append(ready.entries);
    if (ready.hardState) node.disk.setHardState(ready.hardState);
    this.invariants.onPersist(node.id, ready.entries, ready.hardState?.commit, (i) => node.durableTerm(i));
  }

  private apply(node: SimNode, ready: Ready): void {
    const raw = node.raw;
    if (!raw) return;
    if (ready.snapshot) {
      node.machine = decodeMachine(ready.snapshot.data);
      this.invariants.onRestore(node.id, ready.snapshot, node.machine);
      this.trace.add(this.now, `${node.id} restored snapshot at ${ready.snapshot.metadata.index} (term ${ready.snapshot.metadata.term})`);
    }
    for (const entry of ready.committedEntries) {
      const before = node.machine;
      if (entry.type === 'confChange') {
        const cc = decodeConfChange(entry.data);
        node.disk.setConfState(raw.applyConfChange(cc));
        this.trace.add(this.now, `${node.id} applied ${cc.type} ${cc.nodeId} at ${entry.index}`);
      }
      else if (entry.data.length > 0) this.appliedData.add(new TextDecoder().decode(entry.data));
      node.machine = applyEntry(before, entry);
      this.invariants.onApply(node.id, before, entry, node.machine);
      this.maybeSnapshot(node);
    }
  }

  private maybeSnapshot(node: SimNode): void {
    const every = this.options.snapshotEvery;
    const applied = node.machine.applied;
    if (every <= 0 || applied - node.disk.snapshot().metadata.index < every) return;
    node.disk.createSnapshot(applied, node.disk.initialState().confState, encodeMachine(node.machine));
    const compactTo = applied - this.options.snapshotKeep;
    if (compactTo > node.disk.firstIndex() - 1) node.disk.compact(compactTo);
  }

  // ---- the network ----------------------------------------------------------------------

  /** Message delay in units of simulated time, [0, maxDelay]. */
  maxDelay = 0;

  private send(from: SimNode, messages: readonly Message[]): void {
    if (messages.length === 0) return;
    this.invariants.onSend(from.view(), messages);
    for (const m of messages) {
      const delay = this.maxDelay > 0 ? this.random.nextInt(this.maxDelay + 1) : 0;
      for (const lost of this.network.send(m, this.now + delay)) this.dropped(lost, 'overflow');
    }
  }

  /** Delivers the message with this sequence number (if a cut link or a down member does not lose it). */
  deliver(seq: number): void {
    const m = this.network.take(seq);
    if (m) this.deliverMessage(m);
    this.check();
  }

  /** Delivers every deliverable message, oldest first (scenarios use this for lock-step runs). */
  deliverAll(): number {
    const messages = this.network.takeAllDeliverable(this.now);
    for (const m of messages) this.deliverMessage(m);
    this.check();
    return messages.length;
  }

  drop(seq: number): void {
    const m = this.network.take(seq);
    if (m) this.dropped(m, 'dropped');
    this.check();
  }

  duplicate(seq: number): void {
    const f = this.network.all().find((x) => x.seq === seq);
    if (f) this.network.send(f.message, f.deliverAt + 1);
    this.check();
  }

  private deliverMessage(m: Message): void {
    const to = this.nodes.get(m.to);
    if (!to?.raw || this.network.isCut(m.from, m.to)) {
      this.dropped(m, to?.raw ? 'cut' : 'down');
      return;
    }
    if (this.options.traceMessages) this.trace.add(this.now, describeMessage(m));
    to.raw.step(m);
    if (m.type === 'snap') this.nodes.get(m.from)?.raw?.reportSnapshot(m.to, true);
  }

  private dropped(m: Message, why: string): void {
    if (this.options.traceMessages) this.trace.add(this.now, `${describeMessage(m)} LOST (${why})`);
    const sender = this.nodes.get(m.from)?.raw;
    if (m.type === 'snap') sender?.reportSnapshot(m.to, false);
  }

  partition(a: readonly string[], b: readonly string[]): void {
    this.network.partition(a.map(nodeId), b.map(nodeId));
    this.trace.add(this.now, `partition ${a.join(',')} | ${b.join(',')}`);
  }

  cutOneWay(from: string, to: string): void {
    this.network.cutLink(nodeId(from), nodeId(to));
    this.trace.add(this.now, `cut ${from} -> ${to}`);
  }

  heal(): void {
    this.network.heal();
    this.trace.add(this.now, 'heal');
  }

  // ---- failures ----------------------------------------------------------------------------

  /** Stops a member: everything not yet persisted (a Ready taken but not finished, the core's memory) is lost. */
  crash(id: string): void {
    const node = this.node(id);
    if (!node.raw) return;
    node.raw = undefined;
    node.pending = undefined;
    this.invariants.onCrash(node.id);
    this.trace.add(this.now, `${id} crashed`);
    this.check();
  }

  restart(id: string): void {
    const node = this.node(id);
    if (node.raw) return;
    this.start(node);
    this.trace.add(this.now, `${id} restarted (term ${node.term}, commit ${node.commit}, applied ${node.machine.applied})`);
    this.check();
  }

  // ---- requests -----------------------------------------------------------------------------------

  propose(id: string, data: string): ProposalResult {
    const node = this.node(id);
    if (!node.raw) return { accepted: false, reason: 'no-leader' };
    const result = node.raw.propose(new TextEncoder().encode(data));
    this.check();
    return result;
  }

  proposeConfChange(id: string, cc: ConfChange): ProposalResult {
    const node = this.node(id);
    if (!node.raw) return { accepted: false, reason: 'no-leader' };
    const result = node.raw.proposeConfChange(cc);
    this.trace.add(this.now, `${id} proposes ${cc.type} ${cc.nodeId}: ${result.accepted ? 'accepted' : result.reason}`);
    this.check();
    return result;
  }

  /** Creates an empty member that will learn everything from the leader once added. */
  addEmptyMember(id: string): SimNode {
    const node = new SimNode(nodeId(id));
    this.nodes.set(node.id, node);
    this.start(node);
    return node;
  }

  readIndex(id: string): string | undefined {
    const node = this.node(id);
    if (!node.raw) return undefined;
    const context = `read-${++this.readCount}`;
    this.invariants.onReadRequested(context);
    const result = node.raw.readIndex(new TextEncoder().encode(context));
    this.check();
    return result.accepted ? context : undefined;
  }

  /** Starts an election on a member now (a pre-vote first when enabled). */
  campaign(id: string): void {
    this.node(id).raw?.campaign();
    this.trace.add(this.now, `${id} campaigns`);
    this.check();
  }

  /** Hands a message straight to a member, as if a peer had sent it. Returns whether the core accepted it. */
  inject(message: Message): boolean {
    const accepted = this.node(message.to).raw?.step(message) ?? false;
    this.trace.add(this.now, `injected ${describeMessage(message)}${accepted ? '' : ' (refused)'}`);
    this.check();
    return accepted;
  }

  transferLeadership(id: string, to: string): void {
    this.node(id).raw?.transferLeadership(nodeId(to));
    this.trace.add(this.now, `${id} asked to transfer leadership to ${to}`);
    this.check();
  }

  // ---- helpers for scenarios and liveness -------------------------------------------------------

  /** Runs Ready cycles and deliveries until nothing moves (bounded). */
  stabilize(maxRounds = 200): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const id of this.nodes.keys()) busy = this.processReady(id) || busy;
      if (this.network.deliverable(this.now).length > 0) {
        this.deliverAll();
        busy = true;
      }
      if (!busy) return;
    }
    throw new Error(`cluster did not stabilize within ${maxRounds} rounds`);
  }

  leaders(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.role === 'leader');
  }

  /** The leader of the highest term among live members, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.leaders()) if (!best || n.term > best.term) best = n;
    return best;
  }

  alive(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }
}

function hashId(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (Math.imul(h, 31) + id.charCodeAt(i)) >>> 0;
  return h;
}
