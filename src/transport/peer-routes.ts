// The receiving half of the peer transport: a fastify plugin for the peer listener.
// Every request is checked (cluster, sender, receiver) before its body is read, and
// every message (or membership request) is validated before it is handed on; a refusal
// is one log line and a 4xx answer (errors.ts), and nothing of it reaches the node.
// Contract: peer-protocol.ts.

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, LogLevel } from 'fastify';
import type { Message, NodeId } from '../raft/types.js';
import { decodeMessages } from './codec.js';
import { MalformedMessageError, PEER_REFUSALS, SnapshotTooLargeError, type PeerRefusal } from './errors.js';
import { FrameReader, FrameTooLargeError } from './frames.js';
import {
  HEADER_CLUSTER,
  HEADER_FROM,
  HEADER_MESSAGE,
  HEADER_TO,
  MEMBERSHIP_BODY_BYTES_MAX,
  MEMBERSHIP_PATH,
  MESSAGES_PATH,
  PEER_CONTENT_TYPE,
  SNAPSHOT_PATH,
  decodeMembershipRequest,
  membershipAnswerBody,
} from './peer-protocol.js';
import type { MembershipChangeHandler, MembershipOutcome, TransportReceiver } from './transport.js';

export interface PeerRoutesOptions extends TransportReceiver {
  /** This member's id; requests addressed (x-cairn-to) to another are refused. */
  readonly selfId: NodeId;
  /** The cluster token (--initial-cluster-token); requests carrying another are refused. */
  readonly clusterToken: string;
  /** Whether `id` is a current member allowed to send to this one. */
  isKnownPeer(id: NodeId): boolean;
  /** Largest message batch, one frame of the message stream. Default 64 MiB (the sender's batches are 4 MiB plus one message). */
  readonly maxBatchBytes?: number;
  /** Largest snapshot body. Default 4 GiB (twice the default backend quota). */
  readonly maxSnapshotBytes?: number;
  /** Level of fastify's per-request logs on these routes; refusals log at warn. Default 'warn', keeping the hot path quiet. */
  readonly logLevel?: LogLevel;
  /**
   * Serves POST /raft/membership: a member asking this one (as the leader) for a membership
   * change. Default none: the route does not exist (answered as any unknown route).
   */
  readonly onMembershipChange?: MembershipChangeHandler;
}

const MIB = 1024 * 1024;

/** Registers POST /raft/messages, POST /raft/snapshot and (with a handler) POST /raft/membership. Encapsulated: its body parsers and hooks stay inside. */
export const peerRoutes: FastifyPluginAsync<PeerRoutesOptions> = async (app, input) => {
  // `??`, not a spread: an option given as undefined still gets its default.
  const options: ResolvedOptions = {
    ...input,
    maxBatchBytes: input.maxBatchBytes ?? 64 * MIB,
    maxSnapshotBytes: input.maxSnapshotBytes ?? 4 * 1024 * MIB,
    logLevel: input.logLevel ?? 'warn',
  };
  if (!Number.isSafeInteger(options.maxBatchBytes) || options.maxBatchBytes <= 0) {
    throw new RangeError('peer routes: maxBatchBytes must be a positive integer');
  }
  if (!Number.isSafeInteger(options.maxSnapshotBytes) || options.maxSnapshotBytes <= 0) {
    throw new RangeError('peer routes: maxSnapshotBytes must be a positive integer');
  }
  const expectedToken = Buffer.from(options.clusterToken);

  app.addHook('onRequest', async (request, reply) => {
    const refusal = checkAddressing(request, options, expectedToken);
    if (refusal !== undefined) return refuse(request, reply, refusal.reason, refusal.detail);
  });

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return refuse(request, reply, 'bodyTooLarge', error.message);
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return refuse(request, reply, 'unsupportedMediaType', error.message);
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return refuse(request, reply, 'malformedBody', error.message);
    }
    request.log.error({ err: error, peer: request.headers[HEADER_FROM] }, 'peer request failed');
    return reply.code(500).send({ error: { code: 'Internal', message: 'internal error' } });
  });

  // Any other path or method on the peer listener: the same {"error":{code,message}} shape as
  // every refusal, not fastify's default 404 body. (After the addressing check above, so a
  // stranger learns nothing about the routes.)
  app.setNotFoundHandler((request, reply) => {
    const path = (request.raw.url ?? '').split('?')[0].slice(0, 200);
    request.log.warn({ peer: request.headers[HEADER_FROM], url: path, statusCode: 400 }, 'peer request refused: no such route');
    return reply.code(400).header('connection', 'close').send({ error: { code: 'InvalidArgument', message: `no such peer route: ${request.method} ${path}` } });
  });

  await app.register(async (scope) => registerMessagesRoute(scope, options));
  await app.register(async (scope) => registerSnapshotRoute(scope, options));
  const onMembershipChange = options.onMembershipChange;
  if (onMembershipChange !== undefined) await app.register(async (scope) => registerMembershipRoute(scope, options, onMembershipChange));
};

/** For callers that prefer a function to `app.register(peerRoutes, options)`. */
export async function registerPeerRoutes(app: FastifyInstance, options: PeerRoutesOptions): Promise<void> {
  await app.register(peerRoutes, options);
}

type ResolvedOptions = PeerRoutesOptions & Required<Pick<PeerRoutesOptions, 'maxBatchBytes' | 'maxSnapshotBytes' | 'logLevel'>>;

function registerMessagesRoute(scope: FastifyInstance, options: ResolvedOptions): void {
  // Only msgpack frames: JSON and text bodies are refused with 415 instead of being parsed.
  // The body is left unread here: the handler takes its frames as they arrive.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser(PEER_CONTENT_TYPE, (_request, _payload, done) => done(null));
  scope.post(MESSAGES_PATH, { logLevel: options.logLevel }, async (request, reply) => {
    const from = request.headers[HEADER_FROM] as NodeId;
    const reader = new FrameReader(options.maxBatchBytes);
    let frames = 0;
    try {
      // destroyOnReturn: false keeps the connection, so a refusal can still be answered.
      for await (const chunk of request.raw.iterator({ destroyOnReturn: false })) {
        for (const frame of reader.push(chunk as Buffer)) {
          const messages = decodeMessages(frame);
          const problem = checkMessages(messages, from, options);
          if (problem !== undefined) return refuse(request, reply, 'malformedBody', `frame ${frames}: ${problem}`);
          // Each frame as it arrives: a stream stays open for as long as its sender has something to send.
          options.onMessages(messages);
          frames++;
        }
      }
    } catch (error) {
      if (error instanceof FrameTooLargeError) return refuse(request, reply, 'bodyTooLarge', `frame ${frames}: ${error.message}`);
      if (error instanceof MalformedMessageError) return refuse(request, reply, 'malformedBody', `frame ${frames}: ${error.message}`);
      if (request.raw.destroyed) {
        // The sender went away mid-stream (it stopped, or its connection broke): nobody to answer.
        request.log.debug({ peer: from, frames, err: error }, 'peer stream ended without its end');
        return reply.hijack();
      }
      throw error;
    }
    if (reader.pendingBytes > 0) return refuse(request, reply, 'malformedBody', `the body ends inside frame ${frames} (${reader.pendingBytes} bytes of it)`);
    if (frames === 0) return refuse(request, reply, 'malformedBody', 'empty body');
    return reply.code(204).send();
  });
}

function registerSnapshotRoute(scope: FastifyInstance, options: ResolvedOptions): void {
  // Leave the body unread: the handler streams it from request.raw.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser(PEER_CONTENT_TYPE, (_request, _payload, done) => done(null));
  scope.post(SNAPSHOT_PATH, { logLevel: options.logLevel }, async (request, reply) => {
    const declaredBytes = Number(request.headers['content-length'] ?? 0);
    if (declaredBytes > options.maxSnapshotBytes) {
      return refuse(request, reply, 'bodyTooLarge', `snapshot of ${declaredBytes} bytes exceeds ${options.maxSnapshotBytes}`);
    }
    const decoded = decodeSnapshotMessage(request.headers[HEADER_MESSAGE], request.headers[HEADER_FROM] as NodeId, options.selfId);
    if (typeof decoded === 'string') return refuse(request, reply, 'malformedSnapshot', decoded);
    const body = new LimitedBody(request.raw, options.maxSnapshotBytes);
    try {
      await options.onSnapshot(decoded, body);
    } catch (error) {
      if (body.tooLarge) return refuse(request, reply, 'bodyTooLarge', `snapshot exceeds ${options.maxSnapshotBytes} bytes`);
      return refuse(request, reply, 'snapshotFailed', error instanceof Error ? error.message : String(error));
    }
    if (body.tooLarge) return refuse(request, reply, 'bodyTooLarge', `snapshot exceeds ${options.maxSnapshotBytes} bytes`);
    request.log.info(
      { peer: decoded.from, index: decoded.snapshot?.metadata.index, bytes: body.bytes },
      'snapshot received',
    );
    return reply.code(204).send();
  });
}

function registerMembershipRoute(scope: FastifyInstance, options: ResolvedOptions, handler: MembershipChangeHandler): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser(
    PEER_CONTENT_TYPE,
    { parseAs: 'buffer', bodyLimit: MEMBERSHIP_BODY_BYTES_MAX },
    (_request, body, done) => done(null, body),
  );
  scope.post(MEMBERSHIP_PATH, { bodyLimit: MEMBERSHIP_BODY_BYTES_MAX, logLevel: options.logLevel }, async (request, reply) => {
    const body = request.body;
    if (!Buffer.isBuffer(body) || body.byteLength === 0) return refuse(request, reply, 'malformedMembership', 'empty body');
    const decoded = decodeMembershipRequest(body);
    if (typeof decoded === 'string') return refuse(request, reply, 'malformedMembership', decoded);
    const from = request.headers[HEADER_FROM] as NodeId;
    const deadline = answerDeadline(reply, decoded.timeoutMs);
    let outcome: MembershipOutcome;
    try {
      outcome = await handler(from, decoded.change, deadline.signal);
    } finally {
      deadline.release();
    }
    // At info, shown where the routes' logLevel allows: a refusal such as a learner not caught up is routine.
    const why = outcome.applied ? {} : { code: outcome.code, reason: outcome.message };
    request.log.info({ peer: from, op: decoded.change.op, applied: outcome.applied, ...why }, 'membership change asked by a peer');
    return reply.code(200).send(membershipAnswerBody(outcome));
  });
}

/** Aborts after `timeoutMs`, or when the asking peer goes away before its answer. */
function answerDeadline(reply: FastifyReply, timeoutMs: number): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const onClose = (): void => {
    if (!reply.raw.writableFinished) controller.abort();
  };
  reply.raw.once('close', onClose);
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer);
      reply.raw.off('close', onClose);
    },
  };
}

function checkAddressing(
  request: FastifyRequest,
  options: PeerRoutesOptions,
  expectedToken: Buffer,
): { reason: PeerRefusal; detail: string } | undefined {
  const token = request.headers[HEADER_CLUSTER];
  if (typeof token !== 'string' || !tokensEqual(Buffer.from(token), expectedToken)) {
    return { reason: 'wrongCluster', detail: typeof token === 'string' ? 'token differs' : `no ${HEADER_CLUSTER} header` };
  }
  const from = request.headers[HEADER_FROM];
  if (typeof from !== 'string' || from === '' || !options.isKnownPeer(from as NodeId)) {
    return { reason: 'unknownSender', detail: typeof from === 'string' ? `sender ${JSON.stringify(from.slice(0, 64))}` : `no ${HEADER_FROM} header` };
  }
  // A member never sends to itself over the network; the core asserts it never answers itself,
  // so a request claiming to be from this member could only be forged, and would crash the step.
  if (from === options.selfId) return { reason: 'unknownSender', detail: `sender ${from} is this member itself` };
  const to = request.headers[HEADER_TO];
  if (to !== options.selfId) {
    return { reason: 'wrongReceiver', detail: `addressed to ${JSON.stringify(to ?? null)}, this member is ${options.selfId}` };
  }
  return undefined;
}

function tokensEqual(actual: Buffer, expected: Buffer): boolean {
  return actual.byteLength === expected.byteLength && timingSafeEqual(actual, expected);
}

/** Requests forwarded to the leader carry no term (the core treats them as local calls); every other message carries its sender's. */
const TERMLESS_TYPES: ReadonlySet<string> = new Set(['prop', 'readIndex', 'transferLeader']);

/**
 * Every message must be what its envelope says (from the sender, to this member, not a
 * snapshot) and shaped as a core sends it, since the core trusts the shape: a term where
 * one belongs (a term-0 'app' would be taken as from the current leader), none on a
 * forwarded request, and a forwarded proposal with entries (an empty one fails an assertion).
 */
function checkMessages(messages: readonly Message[], from: NodeId, options: PeerRoutesOptions): string | undefined {
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    // A forwarded leader transfer names its target as `from` (raft.ts transferLeadership), a member too.
    const fromOk = message.from === from || (message.type === 'transferLeader' && message.from !== options.selfId && options.isKnownPeer(message.from));
    if (!fromOk) return `message ${i} is from ${message.from}, but the request is from ${from}`;
    if (message.to !== options.selfId) return `message ${i} is to ${message.to}, but this member is ${options.selfId}`;
    if (message.type === 'snap') return `message ${i} is a snapshot, which goes to ${SNAPSHOT_PATH}`;
    if (TERMLESS_TYPES.has(message.type) !== (message.term === 0)) {
      return `message ${i} (${message.type}) ${message.term === 0 ? 'carries no term' : `carries term ${message.term}, but a forwarded request carries none`}`;
    }
    if (message.type === 'prop' && message.entries.length === 0) return `message ${i} is a proposal without entries`;
  }
  return undefined;
}

/** The 'snap' message from the x-cairn-message header, or why it is not one. */
function decodeSnapshotMessage(header: string | string[] | undefined, from: NodeId, selfId: NodeId): Message | string {
  if (typeof header !== 'string' || header === '') return `no ${HEADER_MESSAGE} header`;
  let messages: Message[];
  try {
    messages = decodeMessages(Buffer.from(header, 'base64'));
  } catch (error) {
    if (error instanceof MalformedMessageError) return error.message;
    throw error;
  }
  if (messages.length !== 1) return `${HEADER_MESSAGE} must hold exactly one message, not ${messages.length}`;
  const message = messages[0];
  if (message.type !== 'snap' || message.snapshot === undefined) return `${HEADER_MESSAGE} must hold a 'snap' message with snapshot metadata`;
  if (message.term === 0) return `snapshot message carries no term`;
  if (message.from !== from) return `snapshot is from ${message.from}, but the request is from ${from}`;
  if (message.to !== selfId) return `snapshot is to ${message.to}, but this member is ${selfId}`;
  return message;
}

function refuse(request: FastifyRequest, reply: FastifyReply, reason: PeerRefusal, detail: string): FastifyReply {
  const { code, statusCode, message } = PEER_REFUSALS[reason];
  request.log.warn(
    { peer: request.headers[HEADER_FROM], url: request.url, statusCode, reason, detail },
    `peer request refused: ${message}`,
  );
  // The body may be unread (and a snapshot's large): do not keep the connection to drain it.
  return reply.code(statusCode).header('connection', 'close').send({ error: { code, message: `${message}: ${detail}` } });
}

/**
 * A request body as chunks, failing with SnapshotTooLargeError past `maxBytes`. Stopping
 * early leaves the request open (destroyOnReturn: false) so the refusal can still be sent.
 */
class LimitedBody implements AsyncIterable<Uint8Array> {
  bytes = 0;
  tooLarge = false;

  constructor(
    private readonly stream: IncomingMessage,
    private readonly maxBytes: number,
  ) {}

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for await (const chunk of this.stream.iterator({ destroyOnReturn: false })) {
      const bytes = chunk as Buffer;
      this.bytes += bytes.byteLength;
      if (this.bytes > this.maxBytes) {
        this.tooLarge = true;
        throw new SnapshotTooLargeError(this.maxBytes);
      }
      yield bytes;
    }
  }
}
