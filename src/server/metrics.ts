// GET /metrics: a member's state in the Prometheus text format (version 0.0.4).
import type { MvccStore } from '../kv/mvcc.js';
import type { RaftNode } from '../node/raft-node.js';
import { NONE } from '../raft/index.js';

export interface MetricsSources {
  readonly status: ReturnType<RaftNode['status']>;
  readonly node: Pick<RaftNode, 'snapshotsInstalled' | 'readyCycles' | 'entriesPersisted' | 'pendingProposals' | 'lostProposalsRetried' | 'transportStats'>;
  readonly store: Pick<MvccStore, 'appliedIndex' | 'revision' | 'compactRevision'>;
  readonly watchers: number;
  readonly dbSizeBytes: number;
}

function family(name: string, help: string, type: 'gauge' | 'counter', samples: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${samples}`;
}

export function renderMetrics(m: MetricsSources): string {
  const st = m.status;
  const gauges: [string, string, number][] = [
    ['cairn_raft_term', 'Current Raft term', st.hardState.term],
    ['cairn_raft_commit_index', 'Highest log index known committed', st.hardState.commit],
    ['cairn_raft_applied_index', 'Highest log index applied to the store', m.store.appliedIndex],
    ['cairn_raft_is_leader', '1 if this member leads', st.softState.role === 'leader' ? 1 : 0],
    ['cairn_raft_has_leader', '1 if this member knows a leader', st.softState.lead === NONE ? 0 : 1],
    ['cairn_mvcc_revision', 'Current store revision', m.store.revision],
    ['cairn_mvcc_compact_revision', 'Revision below which history is compacted', m.store.compactRevision],
    ['cairn_watchers', 'Open watches on this member', m.watchers],
    ['cairn_proposals_pending', 'Proposals made on this member still waiting for their outcome', m.node.pendingProposals],
    ['cairn_snapshots_installed_total', 'Snapshots received from a leader and installed by this process', m.node.snapshotsInstalled],
    ['cairn_db_size_bytes', 'Size of the member database on disk (sampled)', m.dbSizeBytes],
  ];
  const counters: [string, string, number][] = [
    ['cairn_raft_ready_total', 'Ready cycles handled (one synced write each at most)', m.node.readyCycles],
    ['cairn_raft_entries_persisted_total', 'Log entries persisted', m.node.entriesPersisted],
    ['cairn_proposals_retried_total', 'Proposals lost with a change of leader and proposed again on this member', m.node.lostProposalsRetried],
  ];
  const peers = [...m.node.transportStats().peers];
  const perPeer = (name: string, help: string, value: (s: (typeof peers)[number][1]) => number): string =>
    family(name, help, 'counter', peers.map(([peer, s]) => `${name}{peer="${peer}"} ${value(s)}\n`).join(''));
  return (
    gauges.map(([name, help, value]) => family(name, help, 'gauge', `${name} ${value}\n`)).join('') +
    counters.map(([name, help, value]) => family(name, help, 'counter', `${name} ${value}\n`)).join('') +
    perPeer('cairn_peer_sent_messages_total', 'Raft messages a peer acknowledged', (s) => s.sentMessages) +
    perPeer('cairn_peer_sent_batches_total', 'Requests carrying Raft messages a peer acknowledged', (s) => s.sentBatches) +
    perPeer('cairn_peer_dropped_messages_total', 'Raft messages dropped (queue full or request failed)', (s) => s.droppedMessages)
  );
}
