// The data the Raft core consumes and produces. Plain objects only: they cross
// the transport (msgpackr) and storage (LevelDB) layers unchanged.

/** A member id. In cairn these are 16 hex digits, as in etcd. Branded so an id is never mixed with other strings. */
export type NodeId = string & { readonly __brand: 'NodeId' };
export const NONE = '' as NodeId;
export function nodeId(id: string): NodeId {
  return id as NodeId;
}

/** A Raft term. 0 before any election. */
export type Term = number;
/** A position in the log. The first real entry is at index 1; 0 means "before the log". */
export type LogIndex = number;

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly type: EntryType;
  /** For 'normal', the application's bytes (empty for the leader's no-op). For 'confChange', an encoded ConfChange. */
  readonly data: Uint8Array;
}

export interface HardState {
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  readonly index: LogIndex;
  readonly term: Term;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** Opaque to the core: the application's state machine image (or a handle to stream it). */
  readonly data: Uint8Array;
}

export type ConfChangeType = 'addNode' | 'addLearner' | 'removeNode';

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Opaque to the core (cairn puts the member's URLs here). */
  readonly context?: Uint8Array;
}

export type MessageType =
  // local only: never sent over the network
  | 'hup' // start an election
  | 'beat' // leader: send heartbeats
  | 'prop' // proposal (also forwarded follower -> leader)
  | 'checkQuorum'
  | 'snapStatus' // application reports how sending a snapshot went
  | 'unreachable' // application reports that a peer could not be reached
  | 'transferLeader'
  // sent between peers
  | 'app'
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'snap'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp';

export const PEER_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'app',
  'appResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'snap',
  'heartbeat',
  'heartbeatResp',
  'timeoutNow',
  'readIndex',
  'readIndexResp',
  'prop',
  'transferLeader',
]);

/**
 * One message. Field meanings by type:
 * - app: `index`/`logTerm` name the entry before `entries`; `commit` is the leader's commit.
 * - appResp: `index` is the follower's last matching index (or, when `reject`, the rejected
 *   probe index with `rejectHint`/`logTerm` pointing at where the leader should try next).
 * - vote/preVote: `index`/`logTerm` are the candidate's last entry.
 * - voteResp/preVoteResp: `commit`/`logTerm` name an entry the voter knows is committed (see Raft.commitInfoFor).
 * - heartbeat: `commit` is min(leader commit, follower match); `readRound` names a ReadIndex round.
 * - readIndex/readIndexResp: `context` is the application's request tag; resp `index` is the read index.
 * - prop (forwarded): `logTerm` is the term in which the sender saw the receiver lead; the
 *   receiver appends the entries only if it still leads in that term, so they carry it.
 * - snapStatus: `reject` true means the snapshot failed to arrive.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  readonly logTerm: Term;
  readonly index: LogIndex;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
  readonly reject: boolean;
  readonly rejectHint: LogIndex;
  readonly snapshot?: Snapshot;
  readonly context?: Uint8Array;
  readonly readRound?: number;
}

export type MessageFields = Partial<Message> & Pick<Message, 'type'>;

export function makeMessage(fields: MessageFields): Message {
  return {
    from: NONE,
    to: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state, reported in Ready when it changes; never persisted. */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly index: LogIndex;
  readonly context: Uint8Array;
}

/**
 * What the application must do, in this order, before calling advance():
 * 1. persist `hardState` (if any), `entries` and `snapshot` (if any) durably, as one write;
 * 2. send `messages` (a leader's 'app' messages may be sent before step 1 completes,
 *    Raft thesis §10.2.1; every other message only after);
 * 3. apply `snapshot` then `committedEntries` to the state machine, in order;
 *    for each 'confChange' entry call RawNode.applyConfChange;
 * 4. serve `readStates` once applied >= their index.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
}

export type ProposalRejection =
  | 'no-leader'
  | 'transferring-leadership'
  | 'uncommitted-limit'
  | 'conf-change-pending'
  | 'not-a-member'
  | 'learner-not-caught-up'
  | 'malformed-conf-change'
  | 'too-many-reads';

export type ProposalResult = { readonly accepted: true } | { readonly accepted: false; readonly reason: ProposalRejection };

export const ACCEPTED: ProposalResult = Object.freeze({ accepted: true });
export function rejected(reason: ProposalRejection): ProposalResult {
  return { accepted: false, reason };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function entryBytes(e: Entry): number {
  // A fixed overhead per entry keeps empty entries from counting as free.
  return e.data.byteLength + 24;
}

export const EMPTY_BYTES = new Uint8Array(0);
