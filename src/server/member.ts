import Fastify from 'fastify';
import { pino } from 'pino';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MvccStore } from '../kv/mvcc.js';
import { WatchHub } from '../kv/watch-hub.js';
import { bootstrapIfEmpty } from '../node/bootstrap.js';
import { memberIdFor, type ServeConfig } from '../node/config.js';
import { loadOrCreateIdentity } from '../node/identity.js';
import { LeaseKeeper } from '../node/lease-keeper.js';
import { MemberRegistry, encodeMemberInfo } from '../node/members.js';
import { RaftNode, type StateMachine } from '../node/raft-node.js';
import { encodeCommand, type KvResult } from '../kv/kv-commands.js';
import { nodeId, type NodeId } from '../raft/index.js';
import { openMemberDb, type MemberDb } from '../storage/member-db.js';
import { RaftStore } from '../storage/raft-store.js';
import { HttpTransport } from '../transport/peer-sender.js';
import { peerRoutes } from '../transport/peer-routes.js';
import type { TransportReceiver } from '../transport/transport.js';
import { buildClientApp } from './client-api.js';
import { MemberBackend } from './member-backend.js';
import { listenAll, type Listening } from './tls-listener.js';
import { loadClientListenerTls, loadPeerTls } from './tls-options.js';

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

/** How long a stopping member lets requests in flight finish before it answers the rest (504, outcome unknown). */
const SHUTDOWN_GRACE_MS = 2000;

/** A running member: everything it opened, closed in reverse order by close(). */
export class RunningMember {
  private closing: Promise<void> | undefined;
  constructor(
    readonly id: NodeId,
    /** The client API (for inject() in tests). */
    readonly clientApp: ReturnType<typeof buildClientApp>,
    private readonly parts: {
      db: MemberDb;
      store: RaftStore;
      kv: MvccStore;
      hub: WatchHub;
      leases: LeaseKeeper;
      node: RaftNode;
      clientApp: { close(): PromiseLike<unknown> };
      peerApp: { close(): PromiseLike<unknown> };
      publisher: NodeJS.Timeout;
      backend: MemberBackend;
    },
  ) {}

  /** Graceful stop: stop taking requests, end watches, let the Raft loop finish its Ready, close the database. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const p = this.parts;
      clearInterval(p.publisher);
      p.backend.close();
      p.hub.close();
      p.leases.close();
      // Requests in flight get a grace period to finish; what still waits then (a write
      // with no quorum to commit it) is answered by the node's close: outcome unknown.
      const appClosed = Promise.resolve(p.clientApp.close());
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([appClosed, new Promise((resolve) => (graceTimer = setTimeout(resolve, SHUTDOWN_GRACE_MS)))]);
      clearTimeout(graceTimer);
      await p.node.close();
      await appClosed;
      await p.peerApp.close();
      await p.kv.close();
      await p.store.close();
      await p.db.close();
    })();
    return this.closing;
  }
}

/** Opens (or, on a first start, forms) a member from its configuration and starts serving. */
export async function startMember(config: ServeConfig): Promise<RunningMember> {
  return openMember(config, { listen: true });
}

/**
 * Opens a member and starts its Raft loop. With listen: false nothing binds a
 * port (tests drive the client API with inject()); the member can then only
 * form a one-member cluster.
 */
export async function openMember(config: ServeConfig, options: { readonly listen: boolean }): Promise<RunningMember> {
  // Read before anything is opened: a wrong certificate file stops the start with nothing created.
  const clientTls = config.clientTls ? await loadClientListenerTls(config.clientTls) : undefined;
  const peerTls = config.peerTls ? await loadPeerTls(config.peerTls) : undefined;
  const db = await openMemberDb(join(config.dataDir, 'db'));
  const fresh = { id: nodeId(memberIdFor(config.initialAdvertisePeerUrls, config.initialClusterToken)), name: config.name, clusterToken: config.initialClusterToken };
  const { identity, created } = await loadOrCreateIdentity(db, fresh);
  const { id, clusterToken } = identity;
  const log = pino({ level: config.logLevel }).child({ member: identity.name, id });
  if (!created && (identity.name !== config.name || identity.clusterToken !== config.initialClusterToken)) {
    log.warn({ name: config.name }, 'restarting from existing data: its name and cluster token win over the flags');
  }
  // The HTTP layers log failures only: a line per request would cost more than the request.
  const httpLog = log.child({}, { level: config.logLevel === 'error' ? 'error' : 'warn' });
  // forceCloseConnections: peers' message streams stay open for seconds; a stopping member drops them.
  const peerApp = Fastify({ loggerInstance: httpLog, requestTimeout: 0, forceCloseConnections: true });
  const store = await RaftStore.open(db);
  if (config.initialClusterState === 'new') {
    const founders = [...config.initialCluster].map(([name, peerUrls]) => ({
      id: nodeId(memberIdFor(peerUrls, clusterToken)),
      // Identical on every founder (the entries must be): client URLs are published after start.
      info: { name, peerUrls, clientUrls: [] },
    }));
    if (await bootstrapIfEmpty(db, store, founders)) log.info({ members: founders.length }, 'formed a new cluster');
  }
  const members = await MemberRegistry.open(db);
  // Joining: the members named in --initial-cluster are the peers to reach first.
  const seedPeers = new Map(
    config.initialClusterState === 'existing' ? [...config.initialCluster.values()].map((urls) => [nodeId(memberIdFor(urls, clusterToken)), urls[0]] as const) : [],
  );
  const kv = await MvccStore.open(db, { carrySections: [MemberRegistry.SECTION] });
  const hub = new WatchHub(kv);
  let node: RaftNode | undefined;
  const leases = new LeaseKeeper(kv, (leaseId) => {
    node?.propose(encodeCommand({ op: 'leaseRevoke', id: leaseId }), AbortSignal.timeout(5000)).catch(() => undefined);
  });
  const machine: StateMachine = {
    get appliedIndex() {
      return kv.appliedIndex;
    },
    apply: async (commands, extraOps, onResults) => {
      const results = await kv.apply(commands, extraOps, onResults);
      leases.onApplied(results as (KvResult | undefined)[]);
      return results;
    },
    snapshot: () => kv.snapshot(),
    restore: (chunks) => kv.restore(chunks),
  };
  let receiver: TransportReceiver | undefined;
  let transport: HttpTransport | undefined;
  node = new RaftNode({
    id,
    store,
    members,
    stateMachine: machine,
    transport: (hooks) => {
      receiver = hooks;
      transport = new HttpTransport({ selfId: id, clusterToken, logger: log, tls: peerTls?.sender, ...hooks });
      return transport;
    },
    snapshotDir: join(config.dataDir, 'snap'),
    seedPeers,
    tickMs: config.heartbeatIntervalMs,
    electionTicks: Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs),
    snapshotCount: config.snapshotCount,
    // etcd keeps 5000 entries behind a snapshot for slow followers; never more than a snapshot's worth.
    snapshotCatchUpEntries: Math.min(5000, config.snapshotCount),
    logger: log,
    onLeaderChange: (lead, isLeader) => {
      leases.onLeadership(isLeader);
      log.info({ leader: lead || null }, isLeader ? 'became leader' : lead ? 'following a leader' : 'no leader');
    },
  });
  // RaftNode builds its transport in its constructor: membership changes for the leader go on it too.
  const peers = transport as HttpTransport | undefined;
  if (peers === undefined) throw new Error('the Raft node did not build its transport');
  const backend = new MemberBackend({
    node,
    store: kv,
    hub,
    members,
    leases,
    name: identity.name,
    clusterToken,
    dbSizeBytes: () => directoryBytes(join(config.dataDir, 'db')),
    quotaBackendBytes: config.quotaBackendBytes,
    peers,
  });
  await peerApp.register(peerRoutes, {
    selfId: id,
    clusterToken,
    // A member that is joining knows no one until it has replayed the log: accept the cluster's leader.
    isKnownPeer: (peer) => members.list().length === 0 || members.get(peer) !== undefined,
    maxSnapshotBytes: config.quotaBackendBytes,
    onMessages: (messages) => receiver?.onMessages(messages),
    onSnapshot: async (message, body) => {
      if (!receiver) throw new Error('member not started');
      await receiver.onSnapshot(message, body);
    },
    onMembershipChange: (_from, change, signal) => backend.serveMembershipChange(change, signal),
  });
  const clientApp = buildClientApp({ backend, maxRequestBytes: config.maxRequestBytes, loggerInstance: httpLog });
  let peerListening: Listening = peerApp;
  let clientListening: Listening = clientApp;
  if (options.listen) {
    peerListening = await listenAll(peerApp, config.listenPeerUrls, peerTls?.listener, { kind: 'peer', logger: log });
    clientListening = await listenAll(clientApp, config.listenClientUrls, clientTls, { kind: 'client', logger: log });
  }
  node.start();
  const publisher = publishMemberInfo(node, members, id, { name: identity.name, clientUrls: config.advertiseClientUrls });
  log.info({ client: config.advertiseClientUrls, peer: config.initialAdvertisePeerUrls, dataDir: config.dataDir }, 'member started');
  return new RunningMember(id, clientApp, { db, store, kv, hub, leases, node, clientApp: clientListening, peerApp: peerListening, publisher, backend });
}

/**
 * A member tells the others its name and client URLs (the founders' conf changes
 * carry only their own; a member added through the API has no name yet) by
 * re-proposing its own membership with them, until the applied record matches.
 * Retries every second: a conf change waits while another is pending.
 */
function publishMemberInfo(node: RaftNode, members: MemberRegistry, id: NodeId, wanted: { name: string; clientUrls: readonly string[] }): NodeJS.Timeout {
  const timer = setInterval(() => {
    const me = members.get(id);
    if (!me || node.status().softState.lead === '') return;
    if (me.name === wanted.name && me.clientUrls.join(',') === wanted.clientUrls.join(',')) {
      clearInterval(timer);
      return;
    }
    const context = encodeMemberInfo({ name: wanted.name, peerUrls: me.peerUrls, clientUrls: wanted.clientUrls });
    try {
      node.proposeConfChange({ type: me.isLearner ? 'addLearner' : 'addNode', nodeId: id, context });
    } catch {
      // Not accepted now (no leader, another change pending): the next tick tries again.
    }
  }, 1000);
  timer.unref();
  return timer;
}

/** `cairn serve`: start, then stop gracefully on SIGTERM or SIGINT. */
export async function runMember(config: ServeConfig): Promise<void> {
  const member = await startMember(config);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void member.close().then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
