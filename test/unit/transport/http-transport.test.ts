import { createHash } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { makeMessage, type Message, type NodeId } from '../../../src/raft/index.js';
import { InvalidPeerUrlError } from '../../../src/transport/errors.js';
import { MESSAGES_PATH } from '../../../src/transport/peer-protocol.js';
import { peerRoutes, type PeerRoutesOptions } from '../../../src/transport/peer-routes.js';
import { HttpTransport, type HttpTransportOptions } from '../../../src/transport/peer-sender.js';
import type { TransportLogger } from '../../../src/transport/transport.js';
import type { FastifyBaseLogger } from 'fastify';

// A fastify (pino) logger must fit where the transport wants a logger.
const fastifyLoggerFits: FastifyBaseLogger extends TransportLogger ? true : never = true;
void fastifyLoggerFits;
import { A, B, C, WARN, app, captureLogs, entry, gate, snap, waitFor, type LogLine } from './helpers.js';

const TOKEN = 'test-cluster';

interface Receiver {
  server: FastifyInstance;
  url: string;
  received: Message[];
  batchSizes: number[];
  snapshots: { message: Message; bytes: Buffer; chunks: number }[];
  lines: LogLine[];
  /** Most message requests the receiver was handling at once. */
  maxConcurrent: number;
  remotePorts: Set<number>;
  /** Message requests (streams) begun, and answered. */
  requests: number;
  answered: number;
}

interface ReceiverOptions {
  clusterToken?: string;
  isKnownPeer?: (id: NodeId) => boolean;
  onSnapshot?: PeerRoutesOptions['onSnapshot'];
  /** Awaited before each request is handled: lets a test hold a request in flight. */
  beforeRequest?: (request: FastifyRequest) => Promise<void> | void;
  maxSnapshotBytes?: number;
}

interface Sender {
  transport: HttpTransport;
  unreachable: NodeId[];
  snapshotStatus: { id: NodeId; ok: boolean }[];
}

const servers: FastifyInstance[] = [];
const transports: HttpTransport[] = [];

afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  const logs = captureLogs();
  const server = Fastify({ logger: logs.logger });
  servers.push(server);
  const receiver: Receiver = {
    server,
    url: '',
    received: [],
    batchSizes: [],
    snapshots: [],
    lines: logs.lines,
    maxConcurrent: 0,
    remotePorts: new Set(),
    requests: 0,
    answered: 0,
  };
  let concurrent = 0;
  server.addHook('onRequest', async (request) => {
    if (request.url === MESSAGES_PATH) {
      receiver.remotePorts.add(request.socket.remotePort ?? -1);
      receiver.requests++;
      concurrent++;
      receiver.maxConcurrent = Math.max(receiver.maxConcurrent, concurrent);
    }
    await options.beforeRequest?.(request);
  });
  server.addHook('onResponse', async (request) => {
    if (request.url === MESSAGES_PATH) {
      concurrent--;
      receiver.answered++;
    }
  });
  await server.register(peerRoutes, {
    selfId: B,
    clusterToken: options.clusterToken ?? TOKEN,
    isKnownPeer: options.isKnownPeer ?? ((id) => id === A),
    onMessages: (messages) => {
      receiver.batchSizes.push(messages.length);
      receiver.received.push(...messages);
    },
    onSnapshot:
      options.onSnapshot ??
      (async (message, body) => {
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(Buffer.from(chunk));
        receiver.snapshots.push({ message, bytes: Buffer.concat(chunks), chunks: chunks.length });
      }),
    maxSnapshotBytes: options.maxSnapshotBytes,
  });
  receiver.url = await server.listen({ host: '127.0.0.1', port: 0 });
  return receiver;
}

function startSender(url: string, options: Partial<HttpTransportOptions> = {}): Sender {
  const sender: Sender = { transport: undefined as unknown as HttpTransport, unreachable: [], snapshotStatus: [] };
  sender.transport = new HttpTransport({
    selfId: A,
    clusterToken: TOKEN,
    peers: new Map([[B, url]]),
    requestTimeoutMs: 5000,
    onUnreachable: (id) => void sender.unreachable.push(id),
    onSnapshotStatus: (id, ok) => void sender.snapshotStatus.push({ id, ok }),
    openSnapshot: () => chunksOf(Buffer.alloc(0), 1),
    ...options,
  });
  transports.push(sender.transport);
  return sender;
}

async function* chunksOf(data: Buffer, chunkBytes: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += chunkBytes) {
    yield data.subarray(offset, offset + chunkBytes);
    await new Promise((resolve) => setImmediate(resolve)); // a real source yields between reads
  }
}

/** A URL nothing listens on: a server's port, freed. */
async function deadUrl(): Promise<string> {
  const server = Fastify();
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  await server.close();
  return url;
}

const indexes = (messages: readonly Message[]) => messages.map((message) => message.index);
const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const peerStats = (sender: Sender, id: NodeId = B) => sender.transport.stats().peers.get(id)!;

describe('HttpTransport messages', () => {
  it('delivers messages in order, over one kept-alive connection, one request at a time', async () => {
    const receiver = await startReceiver();
    // Streams end every 20 ms here, so the rounds span several requests on the one connection.
    const sender = startSender(receiver.url, { streamLifetimeMs: 20 });
    for (let round = 0; round < 20; round++) {
      sender.transport.send(range(round * 10 + 1, 10).map((index) => app(A, B, index)));
      await waitFor(() => receiver.received.length === (round + 1) * 10, `round ${round} delivered`);
      if (round % 5 === 4) await waitFor(() => receiver.answered === receiver.requests, 'the stream ended and was answered');
    }
    expect(receiver.requests).toBeGreaterThanOrEqual(4);
    expect(indexes(receiver.received)).toEqual(range(1, 200));
    expect(receiver.remotePorts.size).toBe(1);
    expect(receiver.maxConcurrent).toBe(1);
    expect(peerStats(sender)).toMatchObject({ sentMessages: 200, droppedMessages: 0, failedRequests: 0, queuedMessages: 0 });
    expect(sender.unreachable).toEqual([]);
  });

  it('batches a burst: everything sent in one turn shares a request', async () => {
    const receiver = await startReceiver();
    const sender = startSender(receiver.url);
    for (let index = 1; index <= 1000; index++) sender.transport.send([app(A, B, index)]);
    await waitFor(() => receiver.received.length === 1000, 'burst delivered');
    expect(indexes(receiver.received)).toEqual(range(1, 1000));
    expect(receiver.batchSizes).toEqual([1000]);
    expect(peerStats(sender)).toMatchObject({ sentMessages: 1000, sentBatches: 1 });
  });

  it('writes what each turn sends as one frame of the open stream, even while the receiver is not reading yet', async () => {
    const held = gate();
    const receiver = await startReceiver({ beforeRequest: () => held.promise });
    const sender = startSender(receiver.url);
    sender.transport.send([app(A, B, 1)]);
    await waitFor(() => receiver.requests === 1, 'the stream reached the receiver');
    for (let index = 2; index <= 501; index++) {
      sender.transport.send([app(A, B, index)]);
      if (index % 100 === 0) await new Promise((resolve) => setImmediate(resolve)); // several turns of the loop
    }
    await waitFor(() => peerStats(sender).sentMessages === 501, 'all written');
    expect(receiver.requests).toBe(1); // one stream carries them all
    held.open();
    await waitFor(() => receiver.received.length === 501, 'all delivered');
    expect(receiver.batchSizes).toEqual([1, 99, 100, 100, 100, 100, 1]);
    expect(indexes(receiver.received)).toEqual(range(1, 501));
  });

  it('closes a batch at maxBatchBytes and keeps the order across batches', async () => {
    const receiver = await startReceiver();
    const sender = startSender(receiver.url, { maxBatchBytes: 2000 });
    const payload = new Uint8Array(500).fill(1);
    sender.transport.send(range(1, 40).map((index) => app(A, B, index, { entries: [entry(index, 1, payload)] })));
    await waitFor(() => receiver.received.length === 40, 'delivered');
    expect(indexes(receiver.received)).toEqual(range(1, 40));
    expect(Math.max(...receiver.batchSizes)).toBeLessThanOrEqual(4);
    expect(receiver.batchSizes.length).toBeGreaterThanOrEqual(10);
    expect(receiver.received[39].entries[0].data).toEqual(payload);
  });

  it('drops the newest messages past the queue bound, counts them, and reports the peer unreachable', async () => {
    const receiver = await startReceiver();
    const sender = startSender(receiver.url, { maxQueuedMessagesPerPeer: 10 });
    sender.transport.send(range(1, 100).map((index) => app(A, B, index)));
    expect(peerStats(sender)).toMatchObject({ droppedMessages: 90, queuedMessages: 10 });
    await waitFor(() => receiver.received.length === 10, 'the queued ten delivered');
    expect(indexes(receiver.received)).toEqual(range(1, 10));
    await waitFor(() => sender.unreachable.length === 1, 'unreachable reported');
    expect(peerStats(sender)).toMatchObject({ sentMessages: 10, droppedMessages: 90, queuedMessages: 0 });
  });

  it('is refused by a member of another cluster: nothing delivered, one log line, peer unreachable', async () => {
    const receiver = await startReceiver({ clusterToken: 'another-cluster' });
    const sender = startSender(receiver.url);
    sender.transport.send([app(A, B, 1), app(A, B, 2)]);
    await waitFor(() => sender.unreachable.length === 1, 'unreachable reported');
    expect(receiver.received).toEqual([]);
    // Written into the stream before the refusal came, and counted as dropped when it came.
    expect(peerStats(sender)).toMatchObject({ failedRequests: 1, droppedMessages: 2, sentMessages: 2, reachable: false });
    const warnings = receiver.lines.filter((line) => line.level === WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ peer: A, statusCode: 403, reason: 'wrongCluster' });
  });

  it('is refused by a member that does not know the sender', async () => {
    const receiver = await startReceiver({ isKnownPeer: () => false });
    const sender = startSender(receiver.url);
    sender.transport.send([app(A, B, 1)]);
    await waitFor(() => sender.unreachable.length === 1, 'unreachable reported');
    expect(receiver.received).toEqual([]);
    expect(receiver.lines.filter((line) => line.level === WARN).map((line) => line.reason)).toEqual(['unknownSender']);
  });

  it('reports a dead peer unreachable, rate-limited, and recovers when pointed at a live URL', async () => {
    const logged: { level: string; message: string }[] = [];
    const record = (level: string) => (_fields: object, message: string) => void logged.push({ level, message });
    const logger: TransportLogger = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
    const sender = startSender(await deadUrl(), { unreachableReportIntervalMs: 60_000, logger, streamLifetimeMs: 50 });
    for (let index = 1; index <= 3; index++) {
      sender.transport.send([app(A, B, index)]);
      await waitFor(() => peerStats(sender).failedRequests === index, `request ${index} failed`);
    }
    expect(sender.unreachable).toEqual([B]);
    expect(peerStats(sender)).toMatchObject({ failedRequests: 3, droppedMessages: 3, reachable: false });

    const receiver = await startReceiver();
    sender.transport.updatePeer(B, receiver.url);
    sender.transport.send([app(A, B, 4)]);
    await waitFor(() => receiver.received.length === 1, 'delivered after the URL update');
    expect(indexes(receiver.received)).toEqual([4]);
    // Known once the stream that carried it is answered, at its end.
    await waitFor(() => peerStats(sender).reachable, 'reachable again');
    // One warning when the peer went away, quieter lines while it stayed away, one line when it came back.
    expect(logged.filter((line) => line.level === 'warn').map((line) => line.message)).toEqual([
      'peer unreachable: request failed, its messages may be lost',
    ]);
    expect(logged.filter((line) => line.message.startsWith('peer still unreachable'))).toHaveLength(2);
    expect(logged.some((line) => line.level === 'info' && line.message === 'peer reachable again')).toBe(true);
  });

  it('abandons a stream not answered within requestTimeoutMs of its end (a link that swallows what it is sent)', async () => {
    const held = gate();
    const receiver = await startReceiver({ beforeRequest: () => held.promise });
    const sender = startSender(receiver.url, { requestTimeoutMs: 200, streamLifetimeMs: 100 });
    sender.transport.send([app(A, B, 1)]);
    await waitFor(() => sender.unreachable.length === 1, 'timeout reported as unreachable');
    expect(peerStats(sender)).toMatchObject({ failedRequests: 1, droppedMessages: 1 });
    held.open();
  });

  it('drops and counts messages to unknown and removed peers', async () => {
    const receiver = await startReceiver();
    const sender = startSender(receiver.url);
    sender.transport.send([app(A, C, 1), app(A, A, 2)]);
    expect(sender.transport.stats().unknownPeerDrops).toBe(2);
    sender.transport.removePeer(B);
    sender.transport.send([app(A, B, 3)]);
    expect(sender.transport.stats().unknownPeerDrops).toBe(3);
    expect(sender.transport.hasPeer(B)).toBe(false);
    expect(receiver.received).toEqual([]);
  });

  it('refuses a local-only message type and a bad peer URL as programmer errors', async () => {
    const sender = startSender('http://127.0.0.1:1');
    expect(() => sender.transport.send([makeMessage({ type: 'hup', from: A, to: B })])).toThrow(RangeError);
    expect(() => sender.transport.addPeer(C, 'ftp://example.com')).toThrow(InvalidPeerUrlError);
    expect(() => sender.transport.addPeer(C, 'not a url')).toThrow(InvalidPeerUrlError);
    expect(() => new HttpTransport({ ...sender, selfId: A, clusterToken: 'bad\ntoken', onUnreachable() {}, onSnapshotStatus() {}, openSnapshot: () => chunksOf(Buffer.alloc(0), 1) })).toThrow(RangeError);
  });
});

describe('HttpTransport snapshots', () => {
  it('streams a 5 MiB snapshot in chunks that arrives intact, then reports success', async () => {
    const receiver = await startReceiver({ maxSnapshotBytes: 16 * 1024 * 1024 });
    const data = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const sender = startSender(receiver.url, { openSnapshot: () => chunksOf(data, 64 * 1024) });
    sender.transport.send([snap(A, B, 77)]);
    await waitFor(() => sender.snapshotStatus.length === 1, 'snapshot status');
    expect(sender.snapshotStatus).toEqual([{ id: B, ok: true }]);
    expect(receiver.snapshots).toHaveLength(1);
    const [received] = receiver.snapshots;
    expect(received.bytes.length).toBe(data.length);
    expect(createHash('sha256').update(received.bytes).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(received.chunks).toBeGreaterThan(1);
    expect(received.message.snapshot?.metadata).toEqual(snap(A, B, 77).snapshot?.metadata);
    expect(received.message.snapshot?.data.byteLength).toBe(0);
    expect(peerStats(sender)).toMatchObject({ snapshotsSent: 1, snapshotsFailed: 0 });
  });

  it('does not hold up ordinary messages to the same peer', async () => {
    const receiver = await startReceiver();
    const halfway = gate();
    let reachedHalfway = false;
    async function* slowSnapshot(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(1024, 1);
      reachedHalfway = true;
      await halfway.promise;
      yield Buffer.alloc(1024, 2);
    }
    const sender = startSender(receiver.url, { openSnapshot: slowSnapshot });
    sender.transport.send([snap(A, B, 5)]);
    await waitFor(() => reachedHalfway, 'snapshot half sent');
    sender.transport.send([app(A, B, 6), app(A, B, 7)]);
    await waitFor(() => receiver.received.length === 2, 'messages delivered during the snapshot');
    expect(sender.snapshotStatus).toEqual([]);
    halfway.open();
    await waitFor(() => sender.snapshotStatus.length === 1, 'snapshot status');
    expect(sender.snapshotStatus).toEqual([{ id: B, ok: true }]);
    expect(receiver.snapshots[0].bytes.length).toBe(2048);
  });

  it('reports failure when the receiver fails to keep the snapshot', async () => {
    const receiver = await startReceiver({
      onSnapshot: async (_message, body) => {
        for await (const chunk of body) void chunk;
        throw new Error('disk full');
      },
    });
    const sender = startSender(receiver.url, { openSnapshot: () => chunksOf(Buffer.alloc(100_000, 3), 10_000) });
    sender.transport.send([snap(A, B, 5)]);
    await waitFor(() => sender.snapshotStatus.length === 1, 'snapshot status');
    expect(sender.snapshotStatus).toEqual([{ id: B, ok: false }]);
    expect(peerStats(sender)).toMatchObject({ snapshotsSent: 0, snapshotsFailed: 1 });
    expect(receiver.lines.filter((line) => line.level === WARN).map((line) => line.reason)).toEqual(['snapshotFailed']);
  });

  it('reports failure when the snapshot is larger than the receiver allows', async () => {
    const receiver = await startReceiver({ maxSnapshotBytes: 1024 * 1024 });
    const sender = startSender(receiver.url, { openSnapshot: () => chunksOf(Buffer.alloc(3 * 1024 * 1024, 4), 64 * 1024) });
    sender.transport.send([snap(A, B, 5)]);
    await waitFor(() => sender.snapshotStatus.length === 1, 'snapshot status');
    expect(sender.snapshotStatus).toEqual([{ id: B, ok: false }]);
    expect(receiver.snapshots).toEqual([]);
  });

  it('reports failure when the snapshot cannot be opened, or the peer is dead', async () => {
    const receiver = await startReceiver();
    const sender = startSender(receiver.url, {
      openSnapshot: () => {
        throw new Error('no such snapshot');
      },
    });
    sender.transport.send([snap(A, B, 5)]);
    await waitFor(() => sender.snapshotStatus.length === 1, 'snapshot status');
    expect(sender.snapshotStatus).toEqual([{ id: B, ok: false }]);

    const dead = startSender(await deadUrl());
    dead.transport.send([snap(A, B, 5)]);
    await waitFor(() => dead.snapshotStatus.length === 1, 'dead peer snapshot status');
    expect(dead.snapshotStatus).toEqual([{ id: B, ok: false }]);
    expect(dead.unreachable).toEqual([B]);
  });

  it('sends one snapshot per peer at a time: a second fails at once, the first still succeeds', async () => {
    const receiver = await startReceiver();
    const release = gate();
    let opened = 0;
    const sender = startSender(receiver.url, {
      openSnapshot: async function* () {
        opened++;
        yield Buffer.alloc(10, 1);
        await release.promise;
      },
    });
    sender.transport.send([snap(A, B, 5)]);
    await waitFor(() => opened === 1, 'first snapshot opened');
    sender.transport.send([snap(A, B, 6)]);
    await waitFor(() => sender.snapshotStatus.length === 1, 'second refused');
    expect(sender.snapshotStatus).toEqual([{ id: B, ok: false }]);
    release.open();
    await waitFor(() => sender.snapshotStatus.length === 2, 'first done');
    expect(sender.snapshotStatus[1]).toEqual({ id: B, ok: true });
    expect(opened).toBe(1);
    expect(receiver.snapshots.map((s) => s.message.snapshot?.metadata.index)).toEqual([5]);
  });
});

describe('HttpTransport close', () => {
  it('abandons requests in flight, closes the snapshot source, and fires no callback afterwards', async () => {
    const held = gate();
    const receiver = await startReceiver({ beforeRequest: (request) => (request.url === MESSAGES_PATH ? held.promise : undefined) });
    let sourceClosed = false;
    let streaming = false;
    const sender = startSender(receiver.url, {
      openSnapshot: async function* () {
        try {
          streaming = true;
          for (;;) {
            yield Buffer.alloc(16 * 1024);
            await new Promise((resolve) => setImmediate(resolve));
          }
        } finally {
          sourceClosed = true;
        }
      },
    });
    sender.transport.send([app(A, B, 1)]);
    sender.transport.send([snap(A, B, 2)]);
    await waitFor(() => streaming && receiver.maxConcurrent === 1, 'both requests in flight');
    await sender.transport.close();
    expect(sourceClosed).toBe(true);
    held.open();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sender.unreachable).toEqual([]);
    expect(sender.snapshotStatus).toEqual([]);
    sender.transport.send([app(A, B, 3)]); // after close: dropped, never throws
    expect(sender.transport.stats().unknownPeerDrops).toBe(1);
  });

  it('leaves no sockets, servers or timers behind', async () => {
    const sockets = () => process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP'));
    const timers = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout');
    // Earlier tests closed everything in afterEach: their sockets must be gone too.
    await waitFor(() => sockets().length === 0, `earlier tests' sockets released: ${sockets().join(', ')}`);
    const timersBefore = timers().length;
    const receiver = await startReceiver();
    const sender = startSender(receiver.url, { openSnapshot: () => chunksOf(Buffer.alloc(200_000, 1), 50_000) });
    sender.transport.send(range(1, 50).map((index) => app(A, B, index)));
    sender.transport.send([snap(A, B, 60)]);
    await waitFor(() => peerStats(sender).sentMessages === 50 && sender.snapshotStatus.length === 1, 'traffic done');
    expect(sockets().length).toBeGreaterThan(0);
    await sender.transport.close();
    await receiver.server.close();
    await waitFor(() => sockets().length === 0, `sockets released: ${sockets().join(', ')}`);
    await waitFor(() => timers().length <= timersBefore, `timers released: ${timers().length} > ${timersBefore}`);
  });
});

describe('HttpTransport peers', () => {
  it('sends to several peers independently; removing one leaves the others', async () => {
    const b = await startReceiver();
    const logs = captureLogs();
    const c = Fastify({ logger: logs.logger });
    servers.push(c);
    const cReceived: Message[] = [];
    await c.register(peerRoutes, {
      selfId: C,
      clusterToken: TOKEN,
      isKnownPeer: (id) => id === A,
      onMessages: (messages) => void cReceived.push(...messages),
      onSnapshot: async () => {},
    });
    const cUrl = await c.listen({ host: '127.0.0.1', port: 0 });
    const sender = startSender(b.url);
    sender.transport.addPeer(C, `${cUrl}/`);
    sender.transport.send([app(A, B, 1), app(A, C, 2), app(A, B, 3)]);
    await waitFor(() => b.received.length === 2 && cReceived.length === 1, 'delivered to both');
    expect(indexes(b.received)).toEqual([1, 3]);
    expect(indexes(cReceived)).toEqual([2]);
    sender.transport.removePeer(B);
    sender.transport.send([app(A, B, 4), app(A, C, 5)]);
    await waitFor(() => cReceived.length === 2, 'C still served');
    expect(b.received).toHaveLength(2);
    expect([...sender.transport.stats().peers.keys()]).toEqual([C]);
  });
});

