import { afterEach, describe, expect, it } from 'vitest';
import type { Message, NodeId } from '../../../src/raft/index.js';
import { MemoryNetwork, MemoryTransport } from '../../../src/transport/memory-transport.js';
import type { Transport } from '../../../src/transport/transport.js';
import { A, B, C, app, snap, waitFor } from './helpers.js';

interface Member {
  transport: MemoryTransport;
  received: Message[];
  snapshots: { message: Message; bytes: number }[];
  unreachable: NodeId[];
  snapshotStatus: { id: NodeId; ok: boolean }[];
}

const transports: MemoryTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.close()));
});

function member(network: MemoryNetwork, id: NodeId, peers: NodeId[], failSnapshot = false): Member {
  const m: Member = { transport: undefined as unknown as MemoryTransport, received: [], snapshots: [], unreachable: [], snapshotStatus: [] };
  m.transport = new MemoryTransport({
    selfId: id,
    network,
    onMessages: (messages) => void m.received.push(...messages),
    onSnapshot: async (message, body) => {
      let bytes = 0;
      for await (const chunk of body) bytes += chunk.byteLength;
      if (failSnapshot) throw new Error('disk full');
      m.snapshots.push({ message, bytes });
    },
    onUnreachable: (peer) => void m.unreachable.push(peer),
    onSnapshotStatus: (peer, ok) => void m.snapshotStatus.push({ id: peer, ok }),
    openSnapshot: async function* () {
      yield new Uint8Array(100);
      yield new Uint8Array(50);
    },
    maxQueuedMessagesPerPeer: 8,
  });
  for (const peer of peers) m.transport.addPeer(peer, `memory://${peer}`);
  transports.push(m.transport);
  return m;
}

const indexes = (messages: readonly Message[]) => messages.map((message) => message.index);

describe('MemoryTransport', () => {
  it('implements Transport and delivers asynchronously, in order', async () => {
    const network = new MemoryNetwork();
    const a = member(network, A, [B]);
    const b = member(network, B, [A]);
    const transport: Transport = a.transport;
    transport.send([app(A, B, 1), app(A, B, 2)]);
    transport.send([app(A, B, 3)]);
    expect(b.received).toEqual([]); // never from inside send()
    await waitFor(() => b.received.length === 3, 'delivered');
    expect(indexes(b.received)).toEqual([1, 2, 3]);
    expect(a.transport.stats().peers.get(B)).toMatchObject({ sentMessages: 3, sentBatches: 2, queuedMessages: 0 });
  });

  it('bounds the messages in flight per peer and counts drops', async () => {
    const network = new MemoryNetwork();
    const a = member(network, A, [B]);
    const b = member(network, B, [A]);
    a.transport.send(Array.from({ length: 20 }, (_, i) => app(A, B, i + 1)));
    expect(a.transport.stats().peers.get(B)).toMatchObject({ droppedMessages: 12, queuedMessages: 8 });
    await waitFor(() => b.received.length === 8, 'the first eight delivered');
    expect(indexes(b.received)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('partitions: cut-off messages are lost and the peer reported unreachable, until healed', async () => {
    const network = new MemoryNetwork();
    const a = member(network, A, [B, C]);
    const b = member(network, B, [A, C]);
    const c = member(network, C, [A, B]);
    network.isolate(A);
    a.transport.send([app(A, B, 1), app(A, C, 2)]);
    b.transport.send([app(B, C, 3)]);
    await waitFor(() => a.unreachable.length === 2 && c.received.length === 1, 'partition observed');
    expect(b.received).toEqual([]);
    expect(indexes(c.received)).toEqual([3]);
    expect(a.unreachable.sort()).toEqual([B, C]);
    network.heal();
    a.transport.send([app(A, B, 4)]);
    await waitFor(() => b.received.length === 1, 'delivered after heal');
    expect(indexes(b.received)).toEqual([4]);
  });

  it('loses exactly what the drop filter selects', async () => {
    const network = new MemoryNetwork();
    const a = member(network, A, [B]);
    const b = member(network, B, [A]);
    network.setDropFilter((message) => message.index % 2 === 0);
    a.transport.send([1, 2, 3, 4, 5].map((index) => app(A, B, index)));
    await waitFor(() => a.transport.stats().peers.get(B)!.sentMessages === 3, 'delivered');
    expect(indexes(b.received)).toEqual([1, 3, 5]);
    expect(a.transport.stats().peers.get(B)!.droppedMessages).toBe(2);
    expect(a.unreachable).toEqual([]);
  });

  it('streams a snapshot: the receiver gets metadata without data plus the body, the sender a status', async () => {
    const network = new MemoryNetwork();
    const a = member(network, A, [B, C]);
    const b = member(network, B, [A]);
    member(network, C, [A], true);
    a.transport.send([snap(A, B, 9), snap(A, C, 9)]);
    await waitFor(() => a.snapshotStatus.length === 2, 'statuses');
    expect(a.snapshotStatus).toContainEqual({ id: B, ok: true });
    expect(a.snapshotStatus).toContainEqual({ id: C, ok: false });
    expect(b.snapshots).toHaveLength(1);
    expect(b.snapshots[0].bytes).toBe(150);
    expect(b.snapshots[0].message.snapshot?.metadata.index).toBe(9);
    expect(b.snapshots[0].message.snapshot?.data.byteLength).toBe(0);
  });

  it('fires no callback and delivers nothing after close', async () => {
    const network = new MemoryNetwork();
    const a = member(network, A, [B]);
    const b = member(network, B, [A]);
    network.isolate(A);
    a.transport.send([app(A, B, 1), snap(A, B, 2)]);
    await a.transport.close();
    network.heal();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(a.unreachable).toEqual([]);
    expect(a.snapshotStatus).toEqual([]);
    expect(b.received).toEqual([]);
  });
});
