import { Packr } from 'msgpackr';
import type { NodeId } from '../raft/index.js';
import { sublevel, type MemberDb } from '../storage/member-db.js';

const packr = new Packr({ useRecords: false });
const KEY = new TextEncoder().encode('identity');

/** Who this member is, fixed at its first start and read back from its data ever after. */
export interface MemberIdentity {
  readonly id: NodeId;
  readonly name: string;
  readonly clusterToken: string;
}

/**
 * The identity kept in the member's database, or `fresh` written there (synced)
 * on a first start. A restart thus needs only --name and --data-dir: the id and
 * cluster token come from the data, whatever the other flags say.
 */
export async function loadOrCreateIdentity(db: MemberDb, fresh: MemberIdentity): Promise<{ identity: MemberIdentity; created: boolean }> {
  const section = sublevel(db, 'member-meta');
  const stored = await section.get(KEY);
  if (stored) {
    const raw = packr.unpack(stored) as Partial<Record<keyof MemberIdentity, unknown>>;
    if (typeof raw.id !== 'string' || typeof raw.name !== 'string' || typeof raw.clusterToken !== 'string') {
      throw new Error('the member identity in the data directory is malformed');
    }
    return { identity: { id: raw.id as NodeId, name: raw.name, clusterToken: raw.clusterToken }, created: false };
  }
  const value = packr.pack({ id: fresh.id, name: fresh.name, clusterToken: fresh.clusterToken });
  await db.batch([{ type: 'put', sublevel: section, key: KEY, value }], { sync: true });
  return { identity: fresh, created: true };
}
