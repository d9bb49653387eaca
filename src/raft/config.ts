import { assert } from './assert.js';
import type { NodeId } from './types.js';
import type { RandomSource } from './random.js';
import type { RaftStorage } from './storage.js';

/** Every limit of the core in one place, validated once and frozen. */
export interface RaftConfig {
  /** This member's id. Must not be empty. */
  readonly id: NodeId;
  /** The log, hard state and snapshot as persisted so far. */
  readonly storage: RaftStorage;
  /** Election jitter. Injected so runs are reproducible. */
  readonly random: RandomSource;
  /** Ticks a follower waits without hearing from a leader before it campaigns; the actual timeout is random in [electionTicks, 2*electionTicks). Default 10. */
  readonly electionTicks: number;
  /** Ticks between a leader's heartbeats. Must be < electionTicks. Default 1. */
  readonly heartbeatTicks: number;
  /** The last index already applied to the state machine (on restart). Default 0. */
  readonly applied: number;
  /** Most bytes of entries in one append message (at least one entry is always sent). Default 1 MiB. */
  readonly maxSizePerMsgBytes: number;
  /** Most append messages in flight to one follower in the replicate state. Default 256. */
  readonly maxInflightMsgs: number;
  /** Most bytes of entries in flight to one follower (0 = no byte limit). Default 0. */
  readonly maxInflightBytes: number;
  /** Most bytes of proposed but not yet committed entries on a leader; proposals past it are rejected. Default 64 MiB. */
  readonly maxUncommittedEntriesBytes: number;
  /** Most bytes of committed entries handed out in one Ready. Default 64 MiB. */
  readonly maxCommittedSizePerReadyBytes: number;
  /** Most ReadIndex requests waiting on a leader or follower. Default 65536. */
  readonly maxPendingReads: number;
  /** Run a PreVote round before a real election so a rejoining node cannot disrupt a healthy leader. Default true. */
  readonly preVote: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down; followers that hear from a leader ignore votes. Default true. */
  readonly checkQuorum: boolean;
}

export type RaftConfigInput = Pick<RaftConfig, 'id' | 'storage' | 'random'> & Partial<RaftConfig>;

export function validateConfig(input: RaftConfigInput): RaftConfig {
  const config: RaftConfig = {
    electionTicks: 10,
    heartbeatTicks: 1,
    applied: 0,
    maxSizePerMsgBytes: 1024 * 1024,
    maxInflightMsgs: 256,
    maxInflightBytes: 0,
    maxUncommittedEntriesBytes: 64 * 1024 * 1024,
    maxCommittedSizePerReadyBytes: 64 * 1024 * 1024,
    maxPendingReads: 65536,
    preVote: true,
    checkQuorum: true,
    ...input,
  };
  assert(config.id !== '', 'config: id must not be empty');
  assert(Number.isInteger(config.heartbeatTicks) && config.heartbeatTicks > 0, 'config: heartbeatTicks must be a positive integer');
  assert(
    Number.isInteger(config.electionTicks) && config.electionTicks > config.heartbeatTicks,
    'config: electionTicks must be an integer greater than heartbeatTicks',
  );
  assert(Number.isInteger(config.applied) && config.applied >= 0, 'config: applied must be >= 0');
  assert(config.maxSizePerMsgBytes > 0, 'config: maxSizePerMsgBytes must be > 0');
  assert(Number.isInteger(config.maxInflightMsgs) && config.maxInflightMsgs > 0, 'config: maxInflightMsgs must be > 0');
  assert(config.maxInflightBytes >= 0, 'config: maxInflightBytes must be >= 0');
  assert(config.maxUncommittedEntriesBytes > 0, 'config: maxUncommittedEntriesBytes must be > 0');
  assert(config.maxCommittedSizePerReadyBytes > 0, 'config: maxCommittedSizePerReadyBytes must be > 0');
  assert(Number.isInteger(config.maxPendingReads) && config.maxPendingReads > 0, 'config: maxPendingReads must be > 0');
  return Object.freeze(config);
}
