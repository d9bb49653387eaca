// The sending half of the peer transport: Raft messages to other members over HTTP.
// One PeerChannel per member (peer-channel.ts); the wire contract is peer-protocol.ts.

import type { Message, NodeId } from '../raft/types.js';
import { isPeerMessageType } from './codec.js';
import { PeerRequestRefusedError } from './errors.js';
import { PeerChannel, type PeerChannelConfig } from './peer-channel.js';
import { isHeaderSafe } from './peer-protocol.js';
import { peerConnectOptions, type PeerConnectOptions, type PeerTlsCredentials } from './tls-credentials.js';
import {
  RateLimiter,
  SILENT_LOGGER,
  type MembershipChange,
  type MembershipOutcome,
  type MembershipRequestOptions,
  type PeerStats,
  type Transport,
  type TransportCallbacks,
  type TransportLogger,
  type TransportStats,
} from './transport.js';

export interface HttpTransportOptions extends TransportCallbacks {
  /** This member's id, sent as x-cairn-from. */
  readonly selfId: NodeId;
  /** The cluster token (--initial-cluster-token), sent as x-cairn-cluster. */
  readonly clusterToken: string;
  /** The other members and their peer base URLs. Default none (add them with addPeer). */
  readonly peers?: ReadonlyMap<NodeId, string>;
  /** Most messages waiting for one peer; past it new messages are dropped. Default 4096. */
  readonly maxQueuedMessagesPerPeer?: number;
  /** Most estimated bytes waiting for one peer (one message alone may exceed it). Default 64 MiB. */
  readonly maxQueuedBytesPerPeer?: number;
  /** A batch closes once it holds about this many bytes (one message alone may exceed it). Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /**
   * Deadline of a peer's answer: to an ended message stream, to a stream whose body is
   * full, and to connecting. Default 5000.
   */
  readonly requestTimeoutMs?: number;
  /** A message stream is ended (and must be answered), and a new one opened, once it has been open this long. Default 5000. */
  readonly streamLifetimeMs?: number;
  /** Deadline of one snapshot, from connecting to the receiver's answer. Default 600000 (10 minutes). */
  readonly snapshotTimeoutMs?: number;
  /** onUnreachable fires at most once per peer per this interval. Default 1000. */
  readonly unreachableReportIntervalMs?: number;
  /**
   * Mutual TLS with the other members, used for https peer URLs: the certificate
   * this member presents and the only CA it trusts. Default none (https peers are
   * then checked against the system CAs and get no client certificate).
   */
  readonly tls?: PeerTlsCredentials;
  /** Default silent. */
  readonly logger?: TransportLogger;
  /** Milliseconds clock for rate limits. Default performance.now. */
  readonly now?: () => number;
}

const MIB = 1024 * 1024;

/** What every channel shares; `tls` goes into each peer connection's connect options (peer-channel.ts). */
type SenderConfig = PeerChannelConfig;

export class HttpTransport implements Transport {
  private readonly config: SenderConfig;
  private readonly channels = new Map<NodeId, PeerChannel>();
  /** Channels of removed peers, still closing; close() waits for them. */
  private readonly closing = new Set<Promise<void>>();
  private readonly unknownPeerLogLimiter: RateLimiter;
  private unknownPeerDrops = 0;
  private closed = false;
  private closeDone: Promise<void> | undefined;

  constructor(options: HttpTransportOptions) {
    this.config = validateOptions(options);
    this.unknownPeerLogLimiter = new RateLimiter(this.config.unreachableReportIntervalMs, this.config.now);
    for (const [id, url] of options.peers ?? []) this.addPeer(id, url);
  }

  send(messages: readonly Message[]): void {
    for (const message of messages) {
      if (!isPeerMessageType(message.type)) {
        throw new RangeError(`transport: message type '${message.type}' is local and is never sent to a peer`);
      }
      const channel = this.closed ? undefined : this.channels.get(message.to);
      if (channel === undefined) {
        this.dropForUnknownPeer(message);
      } else if (message.type === 'snap') {
        channel.sendSnapshot(message);
      } else {
        channel.enqueue(message);
      }
    }
  }

  /** Throws InvalidPeerUrlError for a URL that is not http(s), and RangeError for an id that cannot travel in a header. */
  addPeer(id: NodeId, url: string): void {
    if (this.closed) return;
    const existing = this.channels.get(id);
    if (existing !== undefined) {
      existing.updateUrl(url);
      return;
    }
    if (id === this.config.selfId) throw new RangeError(`transport: member ${id} cannot be its own peer`);
    if (!isHeaderSafe(id)) throw new RangeError(`transport: member id ${JSON.stringify(id)} must be printable ASCII`);
    this.channels.set(id, new PeerChannel(id, url, this.config));
    this.config.logger.debug({ peer: id, url }, 'peer added');
  }

  updatePeer(id: NodeId, url: string): void {
    if (this.closed) return;
    const channel = this.channels.get(id);
    if (channel === undefined) this.addPeer(id, url);
    else channel.updateUrl(url);
  }

  removePeer(id: NodeId): void {
    const channel = this.channels.get(id);
    if (channel === undefined) return;
    this.channels.delete(id);
    const done = channel.close();
    this.closing.add(done);
    void done.then(() => this.closing.delete(done));
    this.config.logger.debug({ peer: id }, 'peer removed');
  }

  requestMembershipChange(to: NodeId, change: MembershipChange, options: MembershipRequestOptions): Promise<MembershipOutcome> {
    requirePositiveInteger(options.timeoutMs, 'timeoutMs');
    const channel = this.closed ? undefined : this.channels.get(to);
    if (channel === undefined) return Promise.reject(new PeerRequestRefusedError(`no connection to member ${to}: it is not a known peer`));
    return channel.requestMembershipChange(change, options);
  }

  hasPeer(id: NodeId): boolean {
    return this.channels.has(id);
  }

  stats(): TransportStats {
    const peers = new Map<NodeId, PeerStats>();
    for (const [id, channel] of this.channels) peers.set(id, channel.stats());
    return { peers, unknownPeerDrops: this.unknownPeerDrops };
  }

  close(): Promise<void> {
    if (this.closeDone === undefined) {
      this.closed = true;
      const channels = [...this.channels.values()];
      this.channels.clear();
      this.closeDone = Promise.all([...channels.map((channel) => channel.close()), ...this.closing]).then(() => {});
    }
    return this.closeDone;
  }

  private dropForUnknownPeer(message: Message): void {
    this.unknownPeerDrops++;
    if (this.closed) return;
    if (this.unknownPeerLogLimiter.tryAcquire()) {
      this.config.logger.warn({ peer: message.to, type: message.type }, 'message to an unknown peer dropped');
    }
    if (message.type === 'snap') {
      // Keep the promise that every snapshot gets a status: Raft waits for it.
      const { onSnapshotStatus } = this.config.callbacks;
      queueMicrotask(() => {
        if (!this.closed) onSnapshotStatus(message.to, false);
      });
    }
  }
}

function validateOptions(options: HttpTransportOptions): SenderConfig {
  const config: SenderConfig = {
    selfId: options.selfId,
    clusterToken: options.clusterToken,
    maxQueuedMessagesPerPeer: options.maxQueuedMessagesPerPeer ?? 4096,
    maxQueuedBytesPerPeer: options.maxQueuedBytesPerPeer ?? 64 * MIB,
    maxBatchBytes: options.maxBatchBytes ?? 4 * MIB,
    requestTimeoutMs: options.requestTimeoutMs ?? 5000,
    streamLifetimeMs: options.streamLifetimeMs ?? 5000,
    snapshotTimeoutMs: options.snapshotTimeoutMs ?? 600_000,
    unreachableReportIntervalMs: options.unreachableReportIntervalMs ?? 1000,
    tls: Object.freeze(peerConnectOptions(options.tls)),
    logger: options.logger ?? SILENT_LOGGER,
    // Called through the options object, so callbacks written as methods keep their `this`.
    callbacks: Object.freeze({
      onUnreachable: (id: NodeId) => options.onUnreachable(id),
      onSnapshotStatus: (id: NodeId, ok: boolean) => options.onSnapshotStatus(id, ok),
      openSnapshot: (message: Message) => options.openSnapshot(message),
    }),
    now: options.now ?? (() => performance.now()),
  };
  if (!isHeaderSafe(config.selfId)) throw new RangeError('transport: selfId must be non-empty printable ASCII');
  if (!isHeaderSafe(config.clusterToken)) throw new RangeError('transport: clusterToken must be non-empty printable ASCII');
  requirePositiveInteger(config.maxQueuedMessagesPerPeer, 'maxQueuedMessagesPerPeer');
  requirePositiveInteger(config.maxQueuedBytesPerPeer, 'maxQueuedBytesPerPeer');
  requirePositiveInteger(config.maxBatchBytes, 'maxBatchBytes');
  requirePositiveInteger(config.requestTimeoutMs, 'requestTimeoutMs');
  requirePositiveInteger(config.streamLifetimeMs, 'streamLifetimeMs');
  requirePositiveInteger(config.snapshotTimeoutMs, 'snapshotTimeoutMs');
  if (!Number.isInteger(config.unreachableReportIntervalMs) || config.unreachableReportIntervalMs < 0) {
    throw new RangeError('transport: unreachableReportIntervalMs must be an integer >= 0');
  }
  for (const name of ['onUnreachable', 'onSnapshotStatus', 'openSnapshot'] as const) {
    if (typeof options[name] !== 'function') throw new TypeError(`transport: ${name} must be a function`);
  }
  return Object.freeze(config);
}

function requirePositiveInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`transport: ${name} must be a positive integer`);
}
