import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';
import {
  NONE,
  RawNode,
  SeededRandom,
  decodeConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
} from '../raft/index.js';
import type { BatchOp } from '../storage/member-db.js';
import type { RaftStore } from '../storage/raft-store.js';
import type { Transport, TransportCallbacks, TransportLogger, TransportReceiver } from '../transport/transport.js';
import { CommitNotices } from './commit-notices.js';
import { MemberRegistry } from './members.js';
import { NotAcceptedError, OutcomeUnknownError, Waiters } from './waiters.js';
import { SnapshotInbox } from './snapshot-inbox.js';

const packr = new Packr({ useRecords: false });

/** One committed normal entry, as the state machine sees it. `command` is absent for Raft's own empty entries. */
export interface CommittedCommand {
  readonly index: number;
  readonly term: number;
  readonly command?: Uint8Array;
}

/**
 * The replicated state machine (cairn's MVCC store). Contract:
 * - apply() is deterministic, skips entries at or below appliedIndex (a restart
 *   replays the log from there), and writes everything, the extra operations and
 *   the new applied index included, in ONE batch;
 * - snapshot() only reads: a consistent image as of now;
 * - restore() discards all earlier state and loads an image.
 */
export interface StateMachine {
  readonly appliedIndex: number;
  /**
   * May call `onResults` once the results are decided, before its batch is written:
   * results are final then (a crash before the write replays the same entries to
   * the same results), so callers can be answered a little sooner.
   */
  apply(commands: readonly CommittedCommand[], extraOps: BatchOp[], onResults?: (results: readonly unknown[]) => void): Promise<readonly unknown[]>;
  snapshot(): AsyncIterable<Uint8Array>;
  restore(chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly store: RaftStore;
  readonly members: MemberRegistry;
  readonly stateMachine: StateMachine;
  /** Builds the transport once the node can receive its callbacks. */
  readonly transport: (hooks: TransportCallbacks & TransportReceiver) => Transport;
  /** Where streamed snapshots wait between arriving and being installed. */
  readonly snapshotDir: string;
  /** Milliseconds per Raft tick (the heartbeat interval). */
  readonly tickMs: number;
  /** Ticks without a leader before an election. */
  readonly electionTicks: number;
  /** Applied entries between snapshots. */
  readonly snapshotCount: number;
  /** Entries kept in the log behind a snapshot, so a slightly slow follower catches up from the log. Default 5000. */
  readonly snapshotCatchUpEntries?: number;
  /** Proposals and reads waiting for their outcome at once; past it new ones are refused. Default 20000. */
  readonly maxPendingRequests?: number;
  readonly logger: TransportLogger;
  /** Peers to reach before the member list says anything (a member joining with --initial-cluster-state existing). */
  readonly seedPeers?: ReadonlyMap<NodeId, string>;
  /**
   * Longest a leader holds a commit notice back so that it rides with the next append
   * to the same follower (commit-notices.ts); 0 sends each at once. Default 2.
   */
  readonly commitNoticeHoldMs?: number;
  /** Told whenever the leader this member knows of changes (NONE: no leader). */
  readonly onLeaderChange?: (lead: NodeId, isLeader: boolean) => void;
}

/**
 * The one loop that drives the Raft core: tick, take Ready, persist (one synced
 * batch), send, apply (one batch), advance. Ready cycles never overlap: only
 * runReadyLoop() takes them, and only one runs at a time.
 */
export class RaftNode {
  readonly id: NodeId;
  private readonly raw: RawNode;
  private readonly transport: Transport;
  /** Every message for the peers goes through it. */
  private readonly notices: CommitNotices;
  private readonly proposals: Waiters<unknown, ProposalTag>;
  private readonly reads: Waiters<number>;
  private readonly inbox: SnapshotInbox;
  private readonly pendingReads: { index: number; resolve: () => void }[] = [];
  private ticker: NodeJS.Timeout | undefined;
  private loopRunning = false;
  private loopDone: Promise<void> = Promise.resolve();
  private requestCount = 0;
  /**
   * Names this process's requests apart from an earlier run's: entries a previous run
   * proposed can be applied after a restart, and must not answer this run's waiters.
   */
  private readonly incarnation = randomBytes(6).toString('hex');
  private closed = false;
  private lastSnapshotIndex: number;
  private fatal: Error | undefined;
  lead: NodeId = NONE;
  role = 'follower';
  /** Snapshots received from a leader and installed since this process started. */
  snapshotsInstalled = 0;
  /** The highest term of an entry applied since this process started. */
  private highestAppliedTerm = 0;
  /** Proposals found lost after a change of leader and proposed again (or refused, when no leader took them). */
  lostProposalsRetried = 0;
  /** Ready cycles and entries persisted since this process started (entries per Ready = group commit). */
  readyCycles = 0;
  entriesPersisted = 0;

  constructor(private readonly options: RaftNodeOptions) {
    this.id = options.id;
    const hardState = options.store.memory.initialState().hardState;
    this.raw = new RawNode({
      id: options.id,
      storage: options.store.memory,
      random: new SeededRandom(Date.now() ^ hashOf(options.id)),
      // The state machine may be ahead of the durable commit (a restored image): the
      // core replays from the commit and the state machine skips what it has.
      applied: Math.min(options.stateMachine.appliedIndex, hardState.commit),
      electionTicks: options.electionTicks,
      heartbeatTicks: 1,
    });
    this.lastSnapshotIndex = options.store.memory.snapshot().metadata.index;
    const max = options.maxPendingRequests ?? 20000;
    this.proposals = new Waiters(max);
    this.reads = new Waiters(max);
    this.inbox = new SnapshotInbox(options.snapshotDir);
    this.transport = options.transport({
      onUnreachable: (id) => this.withCore(() => this.raw.reportUnreachable(id)),
      onSnapshotStatus: (id, ok) => this.withCore(() => this.raw.reportSnapshot(id, ok)),
      openSnapshot: () => options.stateMachine.snapshot(),
      onMessages: (messages) => this.withCore(() => messages.forEach((m) => this.stepPeer(m))),
      onSnapshot: async (message, body) => {
        await this.inbox.receive(message, body);
        this.withCore(() => this.raw.step(message));
      },
    });
    this.notices = new CommitNotices((messages) => this.transport.send(messages), options.commitNoticeHoldMs ?? 2);
    for (const m of options.members.list()) if (m.id !== this.id && m.peerUrls[0]) this.transport.addPeer(m.id, m.peerUrls[0]);
    // A member joining a running cluster knows no one until it has replayed the log,
    // which it cannot get without answering the leader: start from the peers it was told.
    for (const [peer, url] of options.seedPeers ?? []) if (peer !== this.id && !options.members.get(peer)) this.transport.addPeer(peer, url);
  }

  start(): void {
    this.ticker = setInterval(() => this.withCore(() => this.raw.tick()), this.options.tickMs);
    this.kick();
  }

  /** Runs a call on the core, then lets the loop pick up whatever it produced. */
  private withCore(call: () => void): void {
    if (this.closed) return;
    call();
    this.kick();
  }

  private stepPeer(m: Message): void {
    this.raw.step(m);
    // A follower's client waits for the follower to apply its proposal: the commit notice that covers it is not held.
    if (m.type === 'prop' && this.role === 'leader') this.notices.proposedBy(m.from, this.raw.lastIndex());
  }

  // ---- requests ---------------------------------------------------------------------------

  /** Proposes a command; resolves with the state machine's result once this member applied it. */
  propose(command: Uint8Array, signal: AbortSignal): Promise<unknown> {
    this.throwIfUnusable();
    // Waited so long to get here that its deadline passed: not proposed, so nothing happened.
    if (signal.aborted) return Promise.reject(new NotAcceptedError('request deadline passed before it was proposed'));
    const requestId = `${this.id}.${this.incarnation}.${++this.requestCount}`;
    const data = packr.pack([requestId, command]);
    // Proposing never changes the term: an accepted entry carries the term read here.
    const done = this.proposals.add(requestId, signal, { term: this.raw.term, data });
    const result = this.raw.propose(data);
    if (!result.accepted) this.proposals.reject(requestId, new NotAcceptedError(result.reason));
    this.kick();
    return done;
  }

  /** A linearizable read barrier: resolves once this member has applied everything committed before the call. */
  async readBarrier(signal: AbortSignal): Promise<void> {
    this.throwIfUnusable();
    const context = `${this.id}.${this.incarnation}.r${++this.requestCount}`;
    const done = this.reads.add(context, signal, undefined);
    const result = this.raw.readIndex(new TextEncoder().encode(context));
    if (!result.accepted) this.reads.reject(context, new NotAcceptedError(result.reason));
    this.kick();
    const index = await done;
    await this.waitApplied(index, signal);
  }

  proposeConfChange(cc: ConfChange): void {
    this.throwIfUnusable();
    const result = this.raw.proposeConfChange(cc);
    if (!result.accepted) throw new NotAcceptedError(result.reason);
    this.kick();
  }

  transferLeadership(to: NodeId): void {
    this.raw.transferLeadership(to);
    this.kick();
  }

  status() {
    return this.raw.status();
  }

  /** Proposals made on this member still waiting for their outcome. */
  get pendingProposals(): number {
    return this.proposals.size;
  }

  transportStats() {
    return this.transport.stats();
  }

  private throwIfUnusable(): void {
    // A stopped loop is a member that cannot serve: callers see Unavailable (503), not an internal error.
    if (this.fatal) throw new NotAcceptedError(`member stopped after an internal failure (${this.fatal.message}); restart it`);
    if (this.closed) throw new NotAcceptedError('member is shutting down');
  }

  private waitApplied(index: number, signal: AbortSignal): Promise<void> {
    if (this.options.stateMachine.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const entry = { index, resolve: () => { signal.removeEventListener('abort', onAbort); resolve(); } };
      const onAbort = (): void => {
        const i = this.pendingReads.indexOf(entry);
        if (i >= 0) this.pendingReads.splice(i, 1);
        reject(new OutcomeUnknownError('read timed out waiting for this member to apply'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pendingReads.push(entry);
    });
  }

  // ---- the loop ----------------------------------------------------------------------------

  private kick(): void {
    if (this.closed || this.fatal || this.loopRunning || !this.raw.hasReady()) return;
    this.loopRunning = true;
    this.loopDone = this.runReadyLoop();
  }

  /**
   * Takes Ready after Ready until there is none. A call that produces work while a
   * Ready is being handled is picked up by the next turn; the loop ends in the same
   * synchronous step in which it sees nothing to do, so no kick is ever lost.
   */
  private async runReadyLoop(): Promise<void> {
    try {
      while (!this.closed && this.raw.hasReady()) {
        await this.handleReady(this.raw.ready());
        this.raw.advance();
        this.maybeSnapshot();
      }
    } catch (err) {
      // A failed disk write or apply leaves the member unable to go on safely: stop it.
      this.fatal = err instanceof Error ? err : new Error(String(err));
      this.options.logger.error({ err: this.fatal }, 'raft loop stopped: the member must be restarted');
      this.proposals.rejectAll(new OutcomeUnknownError(this.fatal.message));
      this.reads.rejectAll(this.fatal);
    } finally {
      this.loopRunning = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState.lead, rd.softState.role);
    // A leader's appends may leave before its own write (Raft thesis §10.2.1); the rest waits for it.
    const early: Message[] = [];
    const rest: Message[] = [];
    for (const m of rd.messages) (this.role === 'leader' && m.type === 'app' && m.entries.length > 0 ? early : rest).push(m);
    if (early.length > 0) this.notices.send(early);
    const before = this.options.store.memory.initialState().hardState;
    const mustSync =
      rd.entries.length > 0 || rd.snapshot !== undefined || (rd.hardState !== undefined && (rd.hardState.term !== before.term || rd.hardState.vote !== before.vote));
    // A Ready that only moves the commit index needs no write of its own: the new
    // commit goes in the apply batch (nothing waits on it being durable; a restart
    // learns the commit from the leader again).
    const commitOnly = !mustSync && rd.hardState !== undefined && rd.committedEntries.length > 0;
    // The state machine takes a snapshot's image before the Raft store records the snapshot:
    // killed in between, the member restarts with its state ahead of its log (which it
    // handles), never with a log that says "installed" over a state that is not.
    if (rd.snapshot) await this.restoreImage(rd);
    if (!commitOnly) await this.options.store.persist({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot, sync: mustSync });
    this.readyCycles++;
    this.entriesPersisted += rd.entries.length;
    // A leader answering clients in this Ready answers them first: what is left to send
    // (the new commit index for the followers, heartbeats) costs a socket write per
    // peer, and nothing in it is needed before the answers.
    const answerFirst = this.role === 'leader' && rd.committedEntries.length > 0;
    let restSent = false;
    const sendRest = (): void => {
      if (restSent) return;
      restSent = true;
      this.notices.send(rest);
    };
    if (!answerFirst) sendRest();
    if (rd.snapshot) this.afterSnapshot(rd);
    // The rest goes out in the turn after the answers, before the apply batch is written.
    if (rd.committedEntries.length > 0) await this.apply(rd.committedEntries, commitOnly ? rd.hardState : undefined, () => setImmediate(sendRest));
    sendRest();
    for (const rs of rd.readStates) this.reads.resolve(new TextDecoder().decode(rs.context), rs.index);
    this.releaseReads();
  }

  private onSoftState(lead: NodeId, role: string): void {
    const lostLeader = this.lead !== lead;
    const wasLeader = this.role === 'leader';
    this.lead = lead;
    this.role = role;
    if (wasLeader && role !== 'leader') this.notices.reset();
    if (lostLeader || wasLeader !== (role === 'leader')) this.options.onLeaderChange?.(lead, role === 'leader');
    if (lostLeader && lead === NONE) {
      // Reads waiting for an index from the old leader will not get one.
      this.reads.rejectAll(new NotAcceptedError('leader lost'));
    } else if (lostLeader) {
      // A new leader without a gap between: ask it. A read is safe to ask twice (any index
      // either leader answers was current after the read began), and a late answer is ignored.
      for (const [context] of this.reads.tagged()) {
        const result = this.raw.readIndex(new TextEncoder().encode(context));
        if (!result.accepted) this.reads.reject(context, new NotAcceptedError(result.reason));
      }
    }
  }

  private async restoreImage(rd: Ready): Promise<void> {
    const snapshot = rd.snapshot!;
    // Proposals of the snapshot's term or before may be inside it: their fate is settled but
    // not known here (never to be proposed again: that could apply one twice).
    for (const [requestId, tag] of this.proposals.tagged()) {
      if (tag.term <= snapshot.metadata.term) this.proposals.reject(requestId, new OutcomeUnknownError('this member caught up from a snapshot; whether the write is in it is not known here'));
    }
    await this.options.stateMachine.restore(this.inbox.take(snapshot.metadata));
    this.snapshotsInstalled++;
    await this.options.members.reload();
  }

  private afterSnapshot(rd: Ready): void {
    const snapshot = rd.snapshot!;
    this.options.store.setConfState(snapshot.metadata.confState);
    this.lastSnapshotIndex = snapshot.metadata.index;
    this.syncPeers();
  }

  /** Applies committed entries; `afterAnswers` is called once this member's waiters among them have their results. */
  private async apply(entries: readonly Entry[], hardState: HardState | undefined, afterAnswers: () => void): Promise<void> {
    const commands: CommittedCommand[] = [];
    const requestIds: (string | undefined)[] = [];
    const extraOps: BatchOp[] = hardState ? [this.options.store.hardStateOp(hardState)] : [];
    let confState: ConfState | undefined;
    for (const e of entries) {
      if (e.type === 'confChange') {
        const cc = decodeConfChange(e.data);
        confState = this.raw.applyConfChange(cc);
        extraOps.push(...this.options.members.apply(cc, confState));
        commands.push({ index: e.index, term: e.term });
        requestIds.push(undefined);
      } else if (e.data.length === 0) {
        commands.push({ index: e.index, term: e.term });
        requestIds.push(undefined);
      } else {
        const decoded = decodeProposal(e.data);
        // Not one of ours (only a faulty peer could have proposed it): every member skips it alike.
        commands.push(decoded ? { index: e.index, term: e.term, command: decoded.command } : { index: e.index, term: e.term });
        requestIds.push(decoded?.requestId);
      }
    }
    if (confState) extraOps.push(this.options.store.confStateOp(confState));
    let answered = false;
    const answer = (results: readonly unknown[]): void => {
      if (answered) return;
      answered = true;
      for (const [i, requestId] of requestIds.entries()) {
        if (!requestId) continue;
        // No result: the state machine already held this entry's effect (a snapshot image taken
        // after it was applied elsewhere). It happened, but what it returned is not known here.
        if (results[i] === undefined) this.proposals.reject(requestId, new OutcomeUnknownError('applied through a snapshot from the leader; its result is not known on this member'));
        else this.proposals.resolve(requestId, results[i]);
      }
      this.retryLostProposals(entries[entries.length - 1].term);
      afterAnswers();
    };
    // Results before the batch is written only when someone here waits for them (the state
    // machine then lets the answers go out first); otherwise the batch goes at once.
    const waited = requestIds.some((id) => id !== undefined && this.proposals.has(id));
    answer(await this.options.stateMachine.apply(commands, extraOps, waited ? answer : undefined));
    if (hardState) this.options.store.setHardState(hardState);
    if (confState) {
      this.options.store.setConfState(confState);
      this.syncPeers();
    }
  }

  /**
   * An entry of term `appliedTerm` was applied: the log up to it is settled, and every
   * entry of an earlier term that ever commits lies before it (terms only grow along the
   * log). A proposal made in an earlier term that has not been applied by now never will
   * be (a leader takes a forwarded one only in the term it was sent for): propose it again,
   * with the same id, in the current term. Nothing can apply it twice.
   */
  private retryLostProposals(appliedTerm: number): void {
    // Proposals are made in the current term, never below an applied entry's: only a rise finds lost ones.
    if (appliedTerm <= this.highestAppliedTerm) return;
    this.highestAppliedTerm = appliedTerm;
    let retried = 0;
    for (const [requestId, tag] of this.proposals.tagged()) {
      if (tag.term >= appliedTerm) continue;
      const result = this.raw.propose(tag.data);
      if (result.accepted) this.proposals.retag(requestId, { term: this.raw.term, data: tag.data });
      else this.proposals.reject(requestId, new NotAcceptedError(`not applied: leadership changed before it was committed, and it could not be proposed again (${result.reason})`));
      retried++;
    }
    this.lostProposalsRetried += retried;
    if (retried > 0) this.kick();
  }

  private releaseReads(): void {
    const applied = this.options.stateMachine.appliedIndex;
    for (let i = this.pendingReads.length - 1; i >= 0; i--) {
      if (this.pendingReads[i].index <= applied) this.pendingReads.splice(i, 1)[0].resolve();
    }
  }

  /** Points the transport at the members as applied. */
  private syncPeers(): void {
    const wanted = new Map(this.options.members.list().filter((m) => m.id !== this.id).map((m) => [m.id, m.peerUrls[0]]));
    for (const [id, url] of wanted) if (url) this.transport.addPeer(id, url);
    for (const id of this.knownPeers) if (!wanted.has(id)) this.transport.removePeer(id);
    this.knownPeers = new Set(wanted.keys());
  }
  private knownPeers = new Set<NodeId>();

  private maybeSnapshot(): void {
    const applied = this.options.stateMachine.appliedIndex;
    const appliedInLog = Math.min(applied, this.options.store.memory.lastIndex());
    if (appliedInLog - this.lastSnapshotIndex < this.options.snapshotCount) return;
    const keep = this.options.snapshotCatchUpEntries ?? 5000;
    this.lastSnapshotIndex = appliedInLog;
    const confState = this.options.store.memory.initialState().confState;
    // The image itself is the state machine's data; the record is metadata (see RaftStore).
    this.options.store.createSnapshot(appliedInLog, confState, Math.max(1, appliedInLog - keep + 1)).catch((err: unknown) => {
      this.options.logger.warn({ err }, 'snapshot bookkeeping failed; will retry at the next one');
    });
  }

  /** Stops ticking, fails what waits, lets the current Ready finish, closes the transport. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.loopDone;
    const err = new NotAcceptedError('member is shutting down');
    this.proposals.rejectAll(new OutcomeUnknownError('member shut down before the outcome was known'));
    this.reads.rejectAll(err);
    this.notices.close();
    await this.transport.close();
    await this.inbox.close();
  }
}

/** A waiting proposal: the term it was proposed in (it commits in that term or never) and its entry data. */
interface ProposalTag {
  readonly term: number;
  readonly data: Uint8Array;
}

/** A proposal's [requestId, command], or undefined when the entry is not one. */
function decodeProposal(data: Uint8Array): { requestId: string; command: Uint8Array } | undefined {
  let value: unknown;
  try {
    value = packr.unpack(data);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'string' || !(value[1] instanceof Uint8Array)) return undefined;
  return { requestId: value[0], command: value[1] };
}

function hashOf(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) >>> 0;
  return h;
}

export { NotAcceptedError, OutcomeUnknownError };
