import type { LogIndex, NodeId } from './types.js';

// Majority arithmetic over the voter set. Learners are never passed in here.

export type VoteResult = 'won' | 'lost' | 'pending';

/** The largest index that a majority of voters have acknowledged (match >= index). */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => LogIndex): LogIndex {
  if (voters.length === 0) return Number.MAX_SAFE_INTEGER; // an empty config commits everything, as in etcd
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[Math.floor(voters.length / 2)];
}

export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const majority = Math.floor(voters.length / 2) + 1;
  if (granted >= majority) return 'won';
  if (granted + missing >= majority) return 'pending';
  return 'lost';
}

export function hasQuorum(voters: readonly NodeId[], isActive: (id: NodeId) => boolean): boolean {
  let active = 0;
  for (const id of voters) if (isActive(id)) active++;
  return active >= Math.floor(voters.length / 2) + 1;
}
