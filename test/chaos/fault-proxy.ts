// A TCP proxy in front of one member's peer listener, so a test can break the
// links between members without any fault code in cairn itself.
//
// Every member sends to a peer on kept-alive connections of its own, and every
// request names its sender (x-cairn-from, src/transport/peer-protocol.ts). The
// proxy reads the first request head of each accepted connection, learns the
// sender A, and from then on applies the fault of the directed link A→B (B being
// the member behind this proxy) to the whole connection, both ways: a Raft
// response travels as a request of its own on B's connection to A's proxy, so
// link B→A is governed there.

import { connect, createServer, type Server, type Socket } from 'node:net';

/** What happens to the connections of one directed link. */
export type LinkFault =
  | { readonly kind: 'none' }
  /** Connections are destroyed as they come (the sender sees resets and refusals). */
  | { readonly kind: 'drop' }
  /** Connections are accepted and nothing is forwarded (the sender waits for its deadline). */
  | { readonly kind: 'blackhole' }
  /** Every chunk is held this long, in order. */
  | { readonly kind: 'delay'; readonly delayMs: number }
  /** Each chunk from the sender destroys its connection with this probability. */
  | { readonly kind: 'flaky'; readonly lossRate: number };

export const NO_FAULT: LinkFault = Object.freeze({ kind: 'none' });

/** A request head larger than this is not a cairn peer request: the connection is closed. */
const HEAD_BYTES_MAX = 64 * 1024;
/** Bytes held for a delayed direction before the source is paused. */
const DELAYED_BYTES_MAX = 4 * 1024 * 1024;
const SENDER_HEADER = /^x-cairn-from:[ \t]*([^\r\n]+?)[ \t]*$/im;

export interface FaultProxyOptions {
  /** The member's real peer port (on host). */
  readonly targetPort: number;
  readonly host?: string;
  /** Port to listen on; 0 picks a free one. */
  readonly listenPort: number;
  /** Random numbers in [0, 1) for flaky links; a seeded source keeps a run close to its replay. */
  readonly random: () => number;
}

export interface FaultProxyStats {
  readonly accepted: number;
  readonly destroyed: number;
  readonly blackholedBytes: number;
  readonly forwardedBytes: number;
}

export class FaultProxy {
  private readonly faults = new Map<string, LinkFault>();
  private readonly connections = new Set<ProxiedConnection>();
  private closed = false;
  private counters = { accepted: 0, destroyed: 0, blackholedBytes: 0, forwardedBytes: 0 };

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly options: FaultProxyOptions,
  ) {}

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const host = options.host ?? '127.0.0.1';
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort, host, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');
    const proxy = new FaultProxy(server, address.port, options);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  /** Sets the fault of the link from member `from` to the member behind this proxy. */
  setFault(from: string, fault: LinkFault): void {
    const before = this.fault(from);
    if (fault.kind === 'none') this.faults.delete(from);
    else this.faults.set(from, fault);
    for (const c of this.connections) if (c.sender === from) c.onFaultChanged(before, fault);
  }

  fault(from: string): LinkFault {
    return this.faults.get(from) ?? NO_FAULT;
  }

  /** Removes every fault. */
  heal(): void {
    for (const from of [...this.faults.keys()]) this.setFault(from, NO_FAULT);
  }

  stats(): FaultProxyStats {
    return { ...this.counters };
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.connections]) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.counters.accepted++;
    const connection = new ProxiedConnection(this, socket, {
      onForwarded: (bytes) => (this.counters.forwardedBytes += bytes),
      onBlackholed: (bytes) => (this.counters.blackholedBytes += bytes),
      onDestroyed: () => {
        this.counters.destroyed++;
        this.connections.delete(connection);
      },
    });
    this.connections.add(connection);
  }
}

interface ConnectionEvents {
  onForwarded(bytes: number): void;
  onBlackholed(bytes: number): void;
  onDestroyed(): void;
}

/** One accepted connection: its sender, its upstream socket, and the two directions between them. */
class ProxiedConnection {
  sender: string | undefined;
  private upstream: Socket | undefined;
  private head: Buffer[] = [];
  private headBytes = 0;
  /** Set once data was discarded: the HTTP stream is broken, so healing the link must close it. */
  private lostData = false;
  private destroyed = false;
  private readonly toMember: Direction;
  private readonly toSender: Direction;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly downstream: Socket,
    private readonly events: ConnectionEvents,
  ) {
    downstream.setNoDelay(true);
    this.toMember = new Direction(downstream, () => this.upstream, this);
    this.toSender = new Direction(undefined, () => this.downstream, this);
    downstream.on('data', (chunk: Buffer) => (this.sender === undefined ? this.readHead(chunk) : this.toMember.push(chunk)));
    downstream.on('error', () => this.destroy());
    downstream.on('close', () => this.destroy());
    downstream.on('end', () => this.toMember.end());
  }

  get fault(): LinkFault {
    return this.sender === undefined ? NO_FAULT : this.proxy.fault(this.sender);
  }

  get random(): () => number {
    return this.proxy.options.random;
  }

  markLost(bytes: number): void {
    this.lostData = true;
    this.events.onBlackholed(bytes);
  }

  forwarded(bytes: number): void {
    this.events.onForwarded(bytes);
  }

  onFaultChanged(before: LinkFault, after: LinkFault): void {
    if (after.kind === 'drop') this.destroy();
    else if (before.kind === 'blackhole' && after.kind !== 'blackhole' && this.lostData) this.destroy();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.toMember.clear();
    this.toSender.clear();
    this.downstream.destroy();
    this.upstream?.destroy();
    this.events.onDestroyed();
  }

  private readHead(chunk: Buffer): void {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const buffered = Buffer.concat(this.head);
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headBytes > HEAD_BYTES_MAX) this.destroy();
      return;
    }
    const match = SENDER_HEADER.exec(buffered.subarray(0, end).toString('latin1'));
    // Not a cairn peer request (a probe, a client by mistake): forwarded, never faulted.
    this.sender = match?.[1] ?? '';
    this.head = [];
    if (this.fault.kind === 'drop') {
      this.destroy();
      return;
    }
    this.openUpstream();
    this.toMember.push(buffered);
  }

  private openUpstream(): void {
    const upstream = connect({ port: this.proxy.options.targetPort, host: this.proxy.options.host ?? '127.0.0.1', noDelay: true });
    this.upstream = upstream;
    this.toSender.source = upstream;
    upstream.on('data', (chunk: Buffer) => this.toSender.push(chunk));
    upstream.on('error', () => this.destroy());
    upstream.on('close', () => this.destroy());
    upstream.on('end', () => this.toSender.end());
  }
}

/**
 * One direction of a connection: chunks go out in order, each as the link's
 * fault says at the moment it arrived. Bounded: a delayed direction holding too
 * much pauses its source.
 */
class Direction {
  private readonly held: { chunk: Buffer; dueAt: number }[] = [];
  private heldBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    public source: Socket | undefined,
    private readonly sink: () => Socket | undefined,
    private readonly connection: ProxiedConnection,
  ) {}

  push(chunk: Buffer): void {
    const fault = this.connection.fault;
    if (fault.kind === 'drop') return this.connection.destroy();
    if (fault.kind === 'blackhole') return this.connection.markLost(chunk.length);
    if (fault.kind === 'flaky' && this.connection.random() < fault.lossRate) return this.connection.destroy();
    const delayMs = fault.kind === 'delay' ? fault.delayMs : 0;
    if (delayMs === 0 && this.held.length === 0) return this.write(chunk);
    // In order: never before a chunk that arrived earlier.
    const last = this.held.length > 0 ? this.held[this.held.length - 1].dueAt : 0;
    this.held.push({ chunk, dueAt: Math.max(performance.now() + delayMs, last) });
    this.heldBytes += chunk.length;
    if (this.heldBytes > DELAYED_BYTES_MAX) this.source?.pause();
    this.schedule();
  }

  end(): void {
    this.ended = true;
    if (this.held.length === 0) this.sink()?.end();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.held.length = 0;
    this.heldBytes = 0;
  }

  private schedule(): void {
    if (this.timer || this.held.length === 0) return;
    const waitMs = Math.max(0, this.held[0].dueAt - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      while (this.held.length > 0 && this.held[0].dueAt <= now) {
        const { chunk } = this.held.shift()!;
        this.heldBytes -= chunk.length;
        this.write(chunk);
      }
      if (this.heldBytes <= DELAYED_BYTES_MAX) this.source?.resume();
      if (this.held.length === 0 && this.ended) this.sink()?.end();
      this.schedule();
    }, waitMs);
  }

  private write(chunk: Buffer): void {
    const sink = this.sink();
    if (!sink || sink.destroyed) return;
    this.connection.forwarded(chunk.length);
    if (!sink.write(chunk) && this.source) {
      const source = this.source;
      source.pause();
      sink.once('drain', () => source.resume());
    }
  }
}
