// The in-memory twin of the HTTP transport, for node-level tests: the same Transport
// interface and the same callbacks, over a MemoryNetwork that can drop messages and
// partition members. Delivery is asynchronous (one setImmediate per batch) and ordered
// per pair of members, like one HTTP request in flight per peer.

import type { Message, NodeId } from '../raft/types.js';
import { isPeerMessageType, withoutSnapshotData } from './codec.js';
import { PeerRequestFailedError, PeerRequestRefusedError, PeerRequestTimeoutError } from './errors.js';
import { decodeMembershipRequest, encodeMembershipRequest, membershipLeaderTimeoutMs } from './peer-protocol.js';
import type {
  MembershipChange,
  MembershipChangeHandler,
  MembershipOutcome,
  MembershipRequestOptions,
  PeerStats,
  Transport,
  TransportCallbacks,
  TransportReceiver,
  TransportStats,
} from './transport.js';

/** Decides, per message, whether the network loses it. Return true to drop. */
export type DropFilter = (message: Message) => boolean;

/** The wires between MemoryTransports, by member id, with fault hooks. */
export class MemoryNetwork {
  private readonly endpoints = new Map<NodeId, MemoryTransport>();
  /** Member -> partition group; members not named in any group share the group -1. */
  private groups = new Map<NodeId, number>();
  private dropFilter: DropFilter | undefined;

  /** Splits the members into groups that cannot reach each other. Members named in no group form one more group. */
  partition(...groups: readonly (readonly NodeId[])[]): void {
    this.groups = new Map();
    groups.forEach((group, index) => group.forEach((id) => this.groups.set(id, index)));
  }

  /** Cuts one member off from every other. */
  isolate(id: NodeId): void {
    this.partition([id]);
  }

  /** Ends every partition. */
  heal(): void {
    this.groups = new Map();
  }

  /** Loses the messages `filter` returns true for (in addition to partitions); undefined stops dropping. */
  setDropFilter(filter: DropFilter | undefined): void {
    this.dropFilter = filter;
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return this.endpoints.has(to) && (this.groups.get(from) ?? -1) === (this.groups.get(to) ?? -1);
  }

  /** @internal MemoryTransport calls these. */
  attach(transport: MemoryTransport): void {
    if (this.endpoints.has(transport.selfId)) throw new Error(`memory network: ${transport.selfId} is already attached`);
    this.endpoints.set(transport.selfId, transport);
  }

  /** @internal */
  detach(transport: MemoryTransport): void {
    if (this.endpoints.get(transport.selfId) === transport) this.endpoints.delete(transport.selfId);
  }

  /** @internal */
  endpoint(id: NodeId): MemoryTransport | undefined {
    return this.endpoints.get(id);
  }

  /** @internal */
  shouldDrop(message: Message): boolean {
    return this.dropFilter?.(message) ?? false;
  }
}

export interface MemoryTransportOptions extends TransportCallbacks, TransportReceiver {
  readonly selfId: NodeId;
  readonly network: MemoryNetwork;
  /** Most messages in flight to one peer; past it new ones are dropped. Default 4096. */
  readonly maxQueuedMessagesPerPeer?: number;
  /** Serves membership changes other members ask this one for. Default none: such requests are refused. */
  readonly onMembershipChange?: MembershipChangeHandler;
}

interface MemoryPeer {
  queuedMessages: number;
  snapshotInFlight: boolean;
  counters: {
    sentMessages: number;
    sentBatches: number;
    droppedMessages: number;
    failedRequests: number;
    snapshotsSent: number;
    snapshotsFailed: number;
  };
  reachable: boolean;
}

export class MemoryTransport implements Transport {
  readonly selfId: NodeId;
  private readonly network: MemoryNetwork;
  private readonly maxQueuedMessagesPerPeer: number;
  private readonly peers = new Map<NodeId, MemoryPeer>();
  private readonly pendingDeliveries = new Set<NodeJS.Immediate>();
  private readonly pendingSnapshots = new Set<Promise<void>>();
  /** Aborting these abandons the membership requests in flight, both ways. */
  private readonly membershipRequests = new Set<AbortController>();
  private unknownPeerDrops = 0;
  private closed = false;

  constructor(private readonly options: MemoryTransportOptions) {
    this.selfId = options.selfId;
    this.network = options.network;
    this.maxQueuedMessagesPerPeer = options.maxQueuedMessagesPerPeer ?? 4096;
    this.network.attach(this);
  }

  send(messages: readonly Message[]): void {
    const batches = new Map<NodeId, Message[]>();
    for (const message of messages) {
      if (!isPeerMessageType(message.type)) {
        throw new RangeError(`transport: message type '${message.type}' is local and is never sent to a peer`);
      }
      const peer = this.closed ? undefined : this.peers.get(message.to);
      if (peer === undefined) {
        this.unknownPeerDrops++;
        if (message.type === 'snap') this.report(() => this.options.onSnapshotStatus(message.to, false));
      } else if (message.type === 'snap') {
        this.sendSnapshot(peer, message);
      } else if (peer.queuedMessages >= this.maxQueuedMessagesPerPeer) {
        peer.counters.droppedMessages++;
        this.reportUnreachable(message.to);
      } else {
        peer.queuedMessages++;
        const batch = batches.get(message.to);
        if (batch === undefined) batches.set(message.to, [message]);
        else batch.push(message);
      }
    }
    for (const [to, batch] of batches) this.schedule(to, batch);
  }

  addPeer(id: NodeId, _url: string): void {
    if (this.closed || this.peers.has(id)) return;
    if (id === this.selfId) throw new RangeError(`transport: member ${id} cannot be its own peer`);
    this.peers.set(id, {
      queuedMessages: 0,
      snapshotInFlight: false,
      counters: { sentMessages: 0, sentBatches: 0, droppedMessages: 0, failedRequests: 0, snapshotsSent: 0, snapshotsFailed: 0 },
      reachable: true,
    });
  }

  updatePeer(id: NodeId, url: string): void {
    this.addPeer(id, url);
  }

  removePeer(id: NodeId): void {
    this.peers.delete(id);
  }

  stats(): TransportStats {
    const peers = new Map<NodeId, PeerStats>();
    for (const [id, peer] of this.peers) {
      peers.set(id, { ...peer.counters, queuedMessages: peer.queuedMessages, reachable: peer.reachable });
    }
    return { peers, unknownPeerDrops: this.unknownPeerDrops };
  }

  /**
   * As the HTTP transport: the request travels encoded (peer-protocol.ts) and is decoded
   * on the other side; an unreachable peer is an unknown outcome, as a lost connection is.
   */
  async requestMembershipChange(to: NodeId, change: MembershipChange, options: MembershipRequestOptions): Promise<MembershipOutcome> {
    if (!Number.isSafeInteger(options.timeoutMs) || options.timeoutMs <= 0) throw new RangeError('transport: timeoutMs must be a positive integer');
    if (this.closed || !this.peers.has(to)) throw new PeerRequestRefusedError(`no connection to member ${to}: it is not a known peer`);
    const body = encodeMembershipRequest(change, membershipLeaderTimeoutMs(options.timeoutMs));
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new PeerRequestTimeoutError(options.timeoutMs)), options.timeoutMs);
    const onAbort = (): void => controller.abort(new PeerRequestFailedError(`the membership request to ${to} was abandoned by its caller`));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    this.membershipRequests.add(controller);
    try {
      // Let the caller go on first, as a request on a socket would.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const receiver = this.network.endpoint(to);
      if (controller.signal.aborted) throw controller.signal.reason;
      if (receiver === undefined || !this.network.canReach(this.selfId, to)) throw new PeerRequestFailedError(`member ${to} cannot be reached`);
      return await untilAborted(receiver.receiveMembershipChange(this.selfId, body, controller.signal), controller.signal);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      this.membershipRequests.delete(controller);
    }
  }

  /** @internal The network delivers here. `signal` aborts when the asking side gives up. */
  async receiveMembershipChange(from: NodeId, body: Uint8Array, signal: AbortSignal): Promise<MembershipOutcome> {
    if (this.closed) throw new PeerRequestFailedError(`memory transport ${this.selfId} is closed`);
    if (!this.peers.has(from)) throw new PeerRequestRefusedError(`member ${this.selfId} refused the membership request: ${from} is not a peer`, { statusCode: 403 });
    const handler = this.options.onMembershipChange;
    if (handler === undefined) throw new PeerRequestRefusedError(`member ${this.selfId} does not serve membership changes`, { statusCode: 400 });
    const decoded = decodeMembershipRequest(body);
    if (typeof decoded === 'string') throw new PeerRequestRefusedError(`member ${this.selfId} refused the membership request: ${decoded}`, { statusCode: 400 });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), decoded.timeoutMs);
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.membershipRequests.add(controller);
    try {
      return await handler(from, decoded.change, controller.signal);
    } catch (error) {
      // As the peer routes' 500: the asking side cannot know how far the handler got.
      throw new PeerRequestFailedError(`member ${this.selfId} failed serving the membership request: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      this.membershipRequests.delete(controller);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const controller of this.membershipRequests) controller.abort(new PeerRequestFailedError(`memory transport ${this.selfId} closed`));
    this.network.detach(this);
    for (const immediate of this.pendingDeliveries) clearImmediate(immediate);
    this.pendingDeliveries.clear();
    await Promise.all(this.pendingSnapshots);
  }

  private schedule(to: NodeId, batch: Message[]): void {
    const immediate = setImmediate(() => {
      this.pendingDeliveries.delete(immediate);
      this.deliver(to, batch);
    });
    this.pendingDeliveries.add(immediate);
  }

  private deliver(to: NodeId, batch: Message[]): void {
    const peer = this.peers.get(to);
    if (peer !== undefined) peer.queuedMessages -= batch.length;
    if (this.closed || peer === undefined) return;
    const receiver = this.network.endpoint(to);
    if (receiver === undefined || !this.network.canReach(this.selfId, to)) {
      // As a failed HTTP request: the batch is lost and the peer reported unreachable.
      peer.counters.droppedMessages += batch.length;
      peer.counters.failedRequests++;
      peer.reachable = false;
      this.reportUnreachable(to);
      return;
    }
    const delivered = batch.filter((message) => !this.network.shouldDrop(message));
    peer.counters.droppedMessages += batch.length - delivered.length;
    peer.counters.sentMessages += delivered.length;
    peer.counters.sentBatches++;
    peer.reachable = true;
    if (delivered.length > 0) receiver.receiveMessages(delivered);
  }

  /** @internal The network delivers here. */
  receiveMessages(messages: readonly Message[]): void {
    if (!this.closed && this.peers.has(messages[0].from)) this.options.onMessages(messages);
  }

  /** @internal */
  async receiveSnapshot(message: Message, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.closed) throw new Error(`memory transport ${this.selfId} is closed`);
    if (!this.peers.has(message.from)) throw new Error(`memory transport ${this.selfId}: ${message.from} is not a peer`);
    await this.options.onSnapshot(message, body);
  }

  private sendSnapshot(peer: MemoryPeer, message: Message): void {
    if (peer.snapshotInFlight) {
      peer.counters.snapshotsFailed++;
      this.report(() => this.options.onSnapshotStatus(message.to, false));
      return;
    }
    peer.snapshotInFlight = true;
    const done = this.streamSnapshot(peer, message);
    this.pendingSnapshots.add(done);
    void done.finally(() => this.pendingSnapshots.delete(done));
  }

  private async streamSnapshot(peer: MemoryPeer, message: Message): Promise<void> {
    // Let send() return first, as the HTTP transport does.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let ok = false;
    try {
      const receiver = this.network.endpoint(message.to);
      if (!this.closed && receiver !== undefined && this.network.canReach(this.selfId, message.to) && !this.network.shouldDrop(message)) {
        await receiver.receiveSnapshot(withoutSnapshotData(message), this.options.openSnapshot(message));
        ok = true;
      }
    } catch {
      ok = false;
    } finally {
      peer.snapshotInFlight = false;
    }
    if (ok) peer.counters.snapshotsSent++;
    else peer.counters.snapshotsFailed++;
    this.report(() => this.options.onSnapshotStatus(message.to, ok));
  }

  private reportUnreachable(id: NodeId): void {
    this.report(() => this.options.onUnreachable(id));
  }

  private report(callback: () => void): void {
    queueMicrotask(() => {
      if (!this.closed) callback();
    });
  }
}

/** Settles as `work` does, or rejects with the signal's reason once it aborts, whichever comes first. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
