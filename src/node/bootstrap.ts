import { NONE, bootstrapEntries, type NodeId } from '../raft/index.js';
import type { MemberDb } from '../storage/member-db.js';
import type { RaftStore } from '../storage/raft-store.js';
import { encodeMemberInfo, type MemberInfo } from './members.js';

/**
 * A founding member's first start: its log begins with one committed conf change
 * per founder (carrying name and URLs), identical on every founder, so they all
 * agree on the membership before any election. Does nothing on a restart.
 */
export async function bootstrapIfEmpty(
  db: MemberDb,
  store: RaftStore,
  founders: readonly { readonly id: NodeId; readonly info: MemberInfo }[],
): Promise<boolean> {
  if (!store.isEmpty()) return false;
  // Every founder must list the same members in the same order: sort by id.
  const sorted = [...founders].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const entries = bootstrapEntries(sorted.map((f) => ({ id: f.id, context: encodeMemberInfo(f.info) })));
  const confState = { voters: sorted.map((f) => f.id), learners: [] };
  await db.batch([store.confStateOp(confState)], { sync: true });
  store.setConfState(confState);
  await store.persist({ hardState: { term: 1, vote: NONE, commit: entries.length }, entries });
  return true;
}
