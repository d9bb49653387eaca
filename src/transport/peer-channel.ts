// Everything sent to one peer: its queue, its one request in flight, its one snapshot
// in flight, its membership requests, and its connections.

import { Readable } from 'node:stream';
import { Client, type Dispatcher } from 'undici';
import type { Message, NodeId } from '../raft/types.js';
import { encodeMessages, estimateMessageBytes, withoutSnapshotData } from './codec.js';
import { encodeFrame } from './frames.js';
import { InvalidPeerUrlError, PeerRequestFailedError, PeerRequestRefusedError, PeerRequestTimeoutError } from './errors.js';
import { MessageQueue } from './message-queue.js';
import { MessageStream, readBounded } from './message-stream.js';
import {
  HEADER_CLUSTER,
  HEADER_FROM,
  HEADER_MESSAGE,
  HEADER_TO,
  MEMBERSHIP_ANSWER_BYTES_MAX,
  MEMBERSHIP_PATH,
  MESSAGES_PATH,
  PEER_CONTENT_TYPE,
  SNAPSHOT_PATH,
  encodeMembershipRequest,
  membershipAnswerOutcome,
  membershipLeaderTimeoutMs,
  membershipRequestFailure,
} from './peer-protocol.js';
import type { PeerConnectOptions } from './tls-credentials.js';
import {
  RateLimiter,
  type MembershipChange,
  type MembershipOutcome,
  type MembershipRequestOptions,
  type PeerStats,
  type TransportCallbacks,
  type TransportLogger,
} from './transport.js';

/** The settings every channel of one transport shares; validated and frozen by HttpTransport. */
export interface PeerChannelConfig {
  readonly selfId: NodeId;
  readonly clusterToken: string;
  readonly maxQueuedMessagesPerPeer: number;
  readonly maxQueuedBytesPerPeer: number;
  readonly maxBatchBytes: number;
  readonly requestTimeoutMs: number;
  /** A message stream is ended, and a new one opened, once it has been open this long. */
  readonly streamLifetimeMs: number;
  readonly snapshotTimeoutMs: number;
  readonly unreachableReportIntervalMs: number;
  /** TLS for https peers (peer certificate, key and trusted CA); empty without peer TLS. */
  readonly tls: PeerConnectOptions;
  readonly logger: TransportLogger;
  readonly callbacks: TransportCallbacks;
  readonly now: () => number;
}

/** A peer's address and the connections to it. Replaced, never mutated, when the URL changes. */
interface PeerTarget {
  readonly url: string;
  /** Message streams: one kept-alive connection, one stream at a time. */
  readonly messages: Client;
  /** Snapshots, on a connection of their own so a snapshot never delays a heartbeat. */
  readonly snapshots: Client;
  /** Membership requests, which wait seconds for their answer: never on the batches' connection. */
  readonly control: Client;
  readonly messagesPath: string;
  readonly snapshotPath: string;
  readonly membershipPath: string;
}

class ChannelClosedError extends Error {
  override readonly name = 'ChannelClosedError';
}

export function openPeerTarget(url: string, connectTimeoutMs: number, tls: PeerConnectOptions): PeerTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidPeerUrlError(`peer URL ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidPeerUrlError(`peer URL ${JSON.stringify(url)} must be http: or https:`);
  }
  const basePath = parsed.pathname.replace(/\/+$/, '');
  // Clients connect on their first request, so an idle snapshot client costs nothing.
  const clientOptions = { pipelining: 1, connect: { ...tls, timeout: connectTimeoutMs } };
  return {
    url,
    messages: new Client(parsed.origin, clientOptions),
    snapshots: new Client(parsed.origin, clientOptions),
    control: new Client(parsed.origin, clientOptions),
    messagesPath: basePath + MESSAGES_PATH,
    snapshotPath: basePath + SNAPSHOT_PATH,
    membershipPath: basePath + MEMBERSHIP_PATH,
  };
}

export class PeerChannel {
  private readonly queue: MessageQueue;
  private readonly headers: Record<string, string>;
  private target: PeerTarget;
  /** Clients of earlier URLs, closing gracefully; destroyed on close(). */
  private readonly retiredClients = new Set<Client>();
  /** Aborting these abandons every request in flight. */
  private readonly inFlightRequests = new Set<AbortController>();
  private readonly unreachableLimiter: RateLimiter;
  private readonly dropLogLimiter: RateLimiter;
  private pumpScheduled = false;
  /** Invariant: true exactly while drain() runs. */
  private batchInFlight = false;
  private drainDone: Promise<void> = Promise.resolve();
  /** The stream new frames go into; undefined until one is needed. */
  private stream: MessageStream | undefined;
  /** Streams not yet over (the current one, and ended ones awaiting their answer); close() aborts them. */
  private readonly streams = new Set<MessageStream>();
  /** Invariant: true exactly while streamSnapshot() runs; at most one snapshot is in flight. */
  private snapshotInFlight = false;
  private snapshotDone: Promise<void> = Promise.resolve();
  /** Membership requests in flight (each settles once aborted); close() waits for them. */
  private readonly membershipRequests = new Set<Promise<unknown>>();
  private closed = false;
  private reachable = true;
  private droppedSinceLog = 0;
  private counters = {
    sentMessages: 0,
    sentBatches: 0,
    droppedMessages: 0,
    failedRequests: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
  };

  constructor(
    readonly id: NodeId,
    url: string,
    private readonly config: PeerChannelConfig,
  ) {
    this.target = openPeerTarget(url, config.requestTimeoutMs, config.tls);
    this.queue = new MessageQueue(config.maxQueuedMessagesPerPeer, config.maxQueuedBytesPerPeer);
    this.headers = {
      'content-type': PEER_CONTENT_TYPE,
      [HEADER_CLUSTER]: config.clusterToken,
      [HEADER_FROM]: config.selfId,
      [HEADER_TO]: id,
    };
    this.unreachableLimiter = new RateLimiter(config.unreachableReportIntervalMs, config.now);
    this.dropLogLimiter = new RateLimiter(config.unreachableReportIntervalMs, config.now);
  }

  get url(): string {
    return this.target.url;
  }

  /** Queues a message for the next batch; drops it (and says the peer is unreachable) when the queue is full. */
  enqueue(message: Message): void {
    if (this.closed) return;
    if (!this.queue.push(message, estimateMessageBytes(message))) {
      this.counters.droppedMessages++;
      this.droppedSinceLog++;
      if (this.dropLogLimiter.tryAcquire()) {
        this.config.logger.warn(
          { peer: this.id, droppedMessages: this.droppedSinceLog, queuedMessages: this.queue.length },
          'peer queue full: dropping messages',
        );
        this.droppedSinceLog = 0;
      }
      // As etcd does: a full queue means the peer cannot keep up; Raft should stop streaming to it and probe.
      this.reportUnreachable();
      return;
    }
    this.schedulePump();
  }

  /** Streams a snapshot on its own connection. A second one while one is in flight fails at once. */
  sendSnapshot(message: Message): void {
    if (this.closed) return;
    if (this.snapshotInFlight) {
      this.counters.snapshotsFailed++;
      this.config.logger.warn(
        { peer: this.id, index: message.snapshot?.metadata.index },
        'snapshot not sent: another snapshot to this peer is in flight',
      );
      this.reportSnapshotStatus(false);
      return;
    }
    this.snapshotInFlight = true;
    this.snapshotDone = this.streamSnapshot(message);
  }

  /** Sends to a new URL from the next request on; the request in flight finishes on the old connections. */
  updateUrl(url: string): void {
    if (this.closed || url === this.target.url) return;
    const next = openPeerTarget(url, this.config.requestTimeoutMs, this.config.tls);
    const retired = this.target;
    this.target = next;
    // The next frame opens a stream to the new URL; this one ends on the old connection.
    this.stream?.end(this.config.requestTimeoutMs);
    this.stream = undefined;
    for (const client of [retired.messages, retired.snapshots, retired.control]) {
      // Graceful: a request in flight finishes on the old connection.
      this.retiredClients.add(client);
      client.close().then(
        () => this.retiredClients.delete(client),
        () => this.retiredClients.delete(client),
      );
    }
    this.config.logger.info({ peer: this.id, url }, 'peer URL updated');
  }

  stats(): PeerStats {
    return { ...this.counters, queuedMessages: this.queue.length, reachable: this.reachable };
  }

  /** Drops the queue, abandons requests in flight, closes connections. No callback fires afterwards. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.counters.droppedMessages += this.queue.clear();
      for (const controller of this.inFlightRequests) controller.abort(new ChannelClosedError('peer channel closed'));
      for (const stream of this.streams) stream.abort(new ChannelClosedError('peer channel closed'));
    }
    await Promise.all([this.drainDone, this.snapshotDone, ...this.membershipRequests, ...[...this.streams].map((stream) => stream.done)]);
    const clients = [this.target.messages, this.target.snapshots, this.target.control, ...this.retiredClients];
    this.retiredClients.clear();
    await Promise.all(clients.map((client) => client.destroy().catch(() => {})));
  }

  /** Asks this peer (the leader) for a membership change; the contract is Transport.requestMembershipChange. */
  requestMembershipChange(change: MembershipChange, options: MembershipRequestOptions): Promise<MembershipOutcome> {
    if (this.closed) return Promise.reject(new PeerRequestRefusedError(`the connection to member ${this.id} is closed`));
    const done = this.postMembershipChange(change, options);
    const settled = done.catch(() => undefined);
    this.membershipRequests.add(settled);
    void settled.then(() => this.membershipRequests.delete(settled));
    return done;
  }

  private async postMembershipChange(change: MembershipChange, options: MembershipRequestOptions): Promise<MembershipOutcome> {
    const { timeoutMs, signal } = options;
    const body = encodeMembershipRequest(change, membershipLeaderTimeoutMs(timeoutMs));
    const target = this.target;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new PeerRequestTimeoutError(timeoutMs)), timeoutMs);
    const onAbort = (): void => controller.abort(new PeerRequestFailedError(`the membership request to ${this.id} was abandoned by its caller`));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    this.inFlightRequests.add(controller);
    try {
      const response = await target.control.request({
        method: 'POST',
        path: target.membershipPath,
        headers: this.headers,
        body,
        signal: controller.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await readBounded(response.body, MEMBERSHIP_ANSWER_BYTES_MAX);
      return membershipAnswerOutcome(this.id, response.statusCode, text);
    } catch (error) {
      throw membershipRequestFailure(this.id, error, controller.signal);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.inFlightRequests.delete(controller);
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.batchInFlight) return;
    // Wait for the end of this turn, so every message sent in it shares one request.
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      if (this.batchInFlight || this.closed || this.queue.length === 0) return;
      this.batchInFlight = true;
      this.drainDone = this.drain();
    });
  }

  /**
   * Writes everything queued into the open stream, a frame per batch; waits only while
   * the stream's body is full (the peer or the network is slow). Never rejects.
   */
  private async drain(): Promise<void> {
    try {
      while (!this.closed && this.queue.length > 0) {
        const stream = this.currentStream();
        const batch = this.queue.takeBatch(this.config.maxBatchBytes);
        const more = stream.write(encodeFrame(encodeMessages(batch)), batch.length);
        this.counters.sentMessages += batch.length;
        this.counters.sentBatches++;
        if (!more && !(await stream.drained(this.config.requestTimeoutMs))) {
          // The peer takes nothing more: give the stream up; the next frame opens another.
          stream.abort(new PeerRequestTimeoutError(this.config.requestTimeoutMs));
        }
      }
    } finally {
      // Synchronously after the last emptiness check, so no enqueue can slip between the two.
      this.batchInFlight = false;
    }
  }

  /** The open stream, or a new one when there is none (a stream ends itself after streamLifetimeMs). */
  private currentStream(): MessageStream {
    if (this.stream?.open) return this.stream;
    const target = this.target;
    const stream = new MessageStream(target.messages, target.messagesPath, this.headers, this.config.streamLifetimeMs, this.config.requestTimeoutMs);
    this.stream = stream;
    this.streams.add(stream);
    void stream.done.then((failure) => this.onStreamOver(stream, failure));
    return stream;
  }

  private onStreamOver(stream: MessageStream, failure: string | undefined): void {
    this.streams.delete(stream);
    if (this.stream === stream) this.stream = undefined;
    if (this.closed) return;
    if (failure === undefined) {
      this.markReachable();
    } else {
      this.counters.failedRequests++;
      // Written, but perhaps never taken: counted as dropped too.
      this.counters.droppedMessages += stream.messages;
      this.markUnreachable(failure, stream.messages);
    }
  }

  private async streamSnapshot(message: Message): Promise<void> {
    const target = this.target;
    const openSnapshot = this.config.callbacks.openSnapshot;
    let bytes = 0;
    // Opened lazily, inside the body stream: if the request never starts, the snapshot is never opened;
    // destroying the stream returns the generator, which returns the snapshot's iterator.
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for await (const chunk of openSnapshot(message)) {
        bytes += chunk.byteLength;
        yield chunk;
      }
    }
    const body = Readable.from(chunks(), { objectMode: false });
    const header = Buffer.from(encodeMessages([withoutSnapshotData(message)])).toString('base64');
    const timeoutMs = this.config.snapshotTimeoutMs;
    let failure: string | undefined;
    try {
      failure = await this.request(timeoutMs, (signal) =>
        target.snapshots.request({
          method: 'POST',
          path: target.snapshotPath,
          headers: { ...this.headers, [HEADER_MESSAGE]: header },
          body,
          signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        }),
      );
    } finally {
      body.destroy();
      this.snapshotInFlight = false;
    }
    if (this.closed) return;
    const fields = { peer: this.id, index: message.snapshot?.metadata.index, bytes };
    if (failure === undefined) {
      this.counters.snapshotsSent++;
      this.config.logger.info(fields, 'snapshot sent');
      this.markReachable();
    } else {
      this.counters.snapshotsFailed++;
      this.config.logger.warn({ ...fields, error: failure }, 'snapshot failed');
      this.reportUnreachable();
    }
    this.reportSnapshotStatus(failure === undefined);
  }

  /** Runs one request with a deadline; resolves to undefined on a 204, else to why it failed. Never rejects. */
  private async request(
    timeoutMs: number,
    start: (signal: AbortSignal) => Promise<Dispatcher.ResponseData>,
  ): Promise<string | undefined> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new PeerRequestTimeoutError(timeoutMs)), timeoutMs);
    this.inFlightRequests.add(controller);
    try {
      const response = await start(controller.signal);
      if (response.statusCode === 204) {
        await response.body.dump();
        return undefined;
      }
      return `peer answered ${response.statusCode}: ${await readBounded(response.body)}`;
    } catch (error) {
      return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    } finally {
      clearTimeout(timer);
      this.inFlightRequests.delete(controller);
    }
  }

  private markReachable(): void {
    if (this.reachable) return;
    this.reachable = true;
    this.config.logger.info({ peer: this.id }, 'peer reachable again');
  }

  private markUnreachable(failure: string, messagesInRequest: number): void {
    const fields = { peer: this.id, url: this.target.url, messagesInRequest, error: failure };
    if (this.reachable) {
      this.reachable = false;
      this.config.logger.warn(fields, 'peer unreachable: request failed, its messages may be lost');
    } else {
      this.config.logger.debug(fields, 'peer still unreachable: request failed');
    }
    this.reportUnreachable();
  }

  private reportUnreachable(): void {
    if (!this.unreachableLimiter.tryAcquire()) return;
    // Never from inside send(): the node may be in the middle of its loop.
    queueMicrotask(() => {
      if (!this.closed) this.config.callbacks.onUnreachable(this.id);
    });
  }

  private reportSnapshotStatus(ok: boolean): void {
    queueMicrotask(() => {
      if (!this.closed) this.config.callbacks.onSnapshotStatus(this.id, ok);
    });
  }
}
