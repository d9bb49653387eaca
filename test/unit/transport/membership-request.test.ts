// A member asking the leader for a membership change over the peer transport
// (Transport.requestMembershipChange): what the caller learns in each case, over HTTP
// against the real peer routes and over the in-memory twin. What the caller must be able
// to tell apart: an answer (applied, or the API error), nothing happened (refused), and
// an unknown outcome (timeout, failure).

import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeId, type NodeId } from '../../../src/raft/index.js';
import { PeerRequestFailedError, PeerRequestRefusedError, PeerRequestTimeoutError } from '../../../src/transport/errors.js';
import { MemoryNetwork, MemoryTransport } from '../../../src/transport/memory-transport.js';
import { decodeMembershipRequest, encodeMembershipRequest, membershipLeaderTimeoutMs, parseMembershipAnswer } from '../../../src/transport/peer-protocol.js';
import { peerRoutes } from '../../../src/transport/peer-routes.js';
import { HttpTransport } from '../../../src/transport/peer-sender.js';
import type { MembershipChange, MembershipChangeHandler, MembershipOutcome, Transport } from '../../../src/transport/transport.js';
import { A, B, C, app, gate, waitFor } from './helpers.js';

const TOKEN = 'test-cluster';
const PROMOTE: MembershipChange = { op: 'promote', memberId: '0123456789abcdef' };
const ADD: MembershipChange = { op: 'add', peerUrls: ['http://127.0.0.1:2410', 'https://n4.example:2380/'], learner: true };
const NOT_CAUGHT_UP: MembershipOutcome = { applied: false, code: 'Unavailable', message: 'not accepted: learner-not-caught-up' };

interface Call {
  from: NodeId;
  change: MembershipChange;
  signal: AbortSignal;
}

/** A leader's side that records what it is asked and answers with `serve` (default: applied). */
function leaderSide(serve: MembershipChangeHandler = async () => ({ applied: true })): { calls: Call[]; handler: MembershipChangeHandler } {
  const calls: Call[] = [];
  return {
    calls,
    handler: (from, change, signal) => {
      calls.push({ from, change, signal });
      return serve(from, change, signal);
    },
  };
}

/** Never answers on its own: resolves with a Timeout outcome once its signal aborts. */
const hangs: MembershipChangeHandler = (_from, _change, signal) =>
  new Promise((resolve) => signal.addEventListener('abort', () => resolve({ applied: false, code: 'Timeout', message: 'gave up' })));

describe('membership request wire format', () => {
  it('round-trips every kind of change with its deadline', () => {
    for (const change of [ADD, PROMOTE, { op: 'remove', memberId: 'fedcba9876543210' } as const]) {
      expect(decodeMembershipRequest(encodeMembershipRequest(change, 1234))).toEqual({ change, timeoutMs: 1234 });
    }
  });

  it('refuses to encode what a receiver would refuse (a programmer error)', () => {
    expect(() => encodeMembershipRequest({ op: 'promote', memberId: 'n4' }, 1000)).toThrow(RangeError);
    expect(() => encodeMembershipRequest({ op: 'add', peerUrls: [], learner: false }, 1000)).toThrow(RangeError);
    expect(() => encodeMembershipRequest(PROMOTE, 0)).toThrow(RangeError);
  });

  it('reads only well-formed answers', () => {
    expect(parseMembershipAnswer('{"applied":true}')).toEqual({ applied: true });
    expect(parseMembershipAnswer('{"applied":false,"error":{"code":"KeyNotFound","message":"member x not found"}}')).toEqual({ applied: false, code: 'KeyNotFound', message: 'member x not found' });
    for (const text of ['', 'not json', '{}', '{"applied":"yes"}', '{"applied":false}', '{"applied":false,"error":{"code":"CompareFailed","message":"x"}}', '{"applied":false,"error":{"code":"Timeout"}}']) {
      expect(parseMembershipAnswer(text), text).toBeUndefined();
    }
  });

  it("leaves the leader a margin to answer within the asker's deadline", () => {
    expect(membershipLeaderTimeoutMs(10_000)).toBe(9000);
    expect(membershipLeaderTimeoutMs(500)).toBe(450);
    expect(membershipLeaderTimeoutMs(1)).toBe(1);
  });
});

describe('HttpTransport.requestMembershipChange', () => {
  const servers: FastifyInstance[] = [];
  const transports: HttpTransport[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((transport) => transport.close()));
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  async function startLeader(handler: MembershipChangeHandler, options: { clusterToken?: string; withRoute?: boolean } = {}): Promise<{ url: string; received: number[] }> {
    const server = Fastify({ logger: false });
    servers.push(server);
    const received: number[] = [];
    await server.register(peerRoutes, {
      selfId: B,
      clusterToken: options.clusterToken ?? TOKEN,
      isKnownPeer: (id) => id === A,
      onMessages: (messages) => void received.push(...messages.map((message) => message.index)),
      onSnapshot: async () => {},
      onMembershipChange: options.withRoute === false ? undefined : handler,
    });
    return { url: await server.listen({ host: '127.0.0.1', port: 0 }), received };
  }

  function startAsker(url: string): HttpTransport {
    const transport = new HttpTransport({
      selfId: A,
      clusterToken: TOKEN,
      peers: new Map([[B, url]]),
      onUnreachable: () => {},
      onSnapshotStatus: () => {},
      openSnapshot: async function* () {},
    });
    transports.push(transport);
    return transport;
  }

  async function deadUrl(): Promise<string> {
    const server = Fastify();
    const url = await server.listen({ host: '127.0.0.1', port: 0 });
    await server.close();
    return url;
  }

  it("carries the change to the leader and brings back its answer: applied, or the API error it would give a client", async () => {
    let answer: MembershipOutcome = { applied: true };
    const leader = leaderSide(async () => answer);
    const asker = startAsker((await startLeader(leader.handler)).url);
    expect(await asker.requestMembershipChange(B, ADD, { timeoutMs: 5000 })).toEqual({ applied: true });
    answer = NOT_CAUGHT_UP;
    expect(await asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000 })).toEqual(NOT_CAUGHT_UP);
    expect(leader.calls.map(({ from, change }) => ({ from, change }))).toEqual([
      { from: A, change: ADD },
      { from: A, change: PROMOTE },
    ]);
  });

  it('tells the leader to stop a little before the deadline, so its Timeout arrives in time', async () => {
    const leader = leaderSide(hangs);
    const asker = startAsker((await startLeader(leader.handler)).url);
    const startedMs = performance.now();
    // An answer, not a PeerRequestTimeoutError: the leader gave up (at 900 ms) before the asker did.
    const outcome = await asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 1000 });
    expect(outcome).toEqual({ applied: false, code: 'Timeout', message: 'gave up' });
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(850);
  });

  it('rejects with PeerRequestTimeoutError when no answer comes within timeoutMs, and the leader stops waiting', async () => {
    const held = gate<MembershipOutcome>();
    const leader = leaderSide(() => held.promise);
    const asker = startAsker((await startLeader(leader.handler)).url);
    const startedMs = performance.now();
    await expect(asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 300 })).rejects.toBeInstanceOf(PeerRequestTimeoutError);
    expect(performance.now() - startedMs).toBeLessThan(1500);
    // The asker went away: the leader's signal aborts (the connection closed), it does not wait out its own deadline.
    await waitFor(() => leader.calls[0]?.signal.aborted === true, "the leader's signal aborted", 2000);
    held.open({ applied: true });
  });

  it("rejects with PeerRequestFailedError (outcome unknown) when the caller's signal aborts", async () => {
    const leader = leaderSide(hangs);
    const asker = startAsker((await startLeader(leader.handler)).url);
    const controller = new AbortController();
    const asked = asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000, signal: controller.signal });
    await waitFor(() => leader.calls.length === 1, 'the request reached the leader');
    controller.abort();
    await expect(asked).rejects.toBeInstanceOf(PeerRequestFailedError);
    const already = AbortSignal.abort();
    await expect(asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000, signal: already })).rejects.toBeInstanceOf(PeerRequestFailedError);
  });

  it('rejects with PeerRequestRefusedError when nothing happened: refused by the leader, no such route, unknown peer, connection refused', async () => {
    const leader = leaderSide();
    const wrongCluster = startAsker((await startLeader(leader.handler, { clusterToken: 'another-cluster' })).url);
    const refused = await wrongCluster.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PeerRequestRefusedError);
    expect((refused as PeerRequestRefusedError).statusCode).toBe(403);
    expect((refused as Error).message).toMatch(/PermissionDenied/);

    const noRoute = startAsker((await startLeader(leader.handler, { withRoute: false })).url);
    await expect(noRoute.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000 })).rejects.toBeInstanceOf(PeerRequestRefusedError);
    await expect(noRoute.requestMembershipChange(C, PROMOTE, { timeoutMs: 5000 })).rejects.toBeInstanceOf(PeerRequestRefusedError);

    const dead = startAsker(await deadUrl());
    const unreachable = await dead.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000 }).catch((error: unknown) => error);
    expect(unreachable).toBeInstanceOf(PeerRequestRefusedError);
    expect((unreachable as Error).message).toMatch(/connection refused/);
    expect(leader.calls).toEqual([]);
  });

  it('rejects with PeerRequestFailedError when the leader fails with no answer (500)', async () => {
    const asker = startAsker((await startLeader(async () => Promise.reject(new Error('disk on fire')))).url);
    const failed = await asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000 }).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(PeerRequestFailedError);
    expect((failed as Error).message).toMatch(/500/);
  });

  it('does not hold up Raft messages to the same peer while it waits', async () => {
    const held = gate<MembershipOutcome>();
    const leader = leaderSide(() => held.promise);
    const started = await startLeader(leader.handler);
    const asker = startAsker(started.url);
    const asked = asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000 });
    await waitFor(() => leader.calls.length === 1, 'the request reached the leader');
    asker.send([app(A, B, 1), app(A, B, 2)]);
    await waitFor(() => started.received.length === 2, 'messages delivered while the membership request waits', 2000);
    held.open({ applied: true });
    expect(await asked).toEqual({ applied: true });
  });

  it('abandons a request in flight on close (outcome unknown)', async () => {
    const leader = leaderSide(hangs);
    const asker = startAsker((await startLeader(leader.handler)).url);
    const asked = asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000 }).catch((error: unknown) => error);
    await waitFor(() => leader.calls.length === 1, 'the request reached the leader');
    await asker.close();
    expect(await asked).toBeInstanceOf(PeerRequestFailedError);
    await expect(asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000 })).rejects.toBeInstanceOf(PeerRequestRefusedError);
  });
});

describe('MemoryTransport.requestMembershipChange', () => {
  const transports: MemoryTransport[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((transport) => transport.close()));
  });

  function member(network: MemoryNetwork, id: NodeId, peers: NodeId[], onMembershipChange?: MembershipChangeHandler): MemoryTransport {
    const transport = new MemoryTransport({
      selfId: id,
      network,
      onMessages: () => {},
      onSnapshot: async () => {},
      onUnreachable: () => {},
      onSnapshotStatus: () => {},
      openSnapshot: async function* () {},
      onMembershipChange,
    });
    for (const peer of peers) transport.addPeer(peer, `memory://${peer}`);
    transports.push(transport);
    return transport;
  }

  it('brings back the answer of the asked member, after the change travelled encoded', async () => {
    const network = new MemoryNetwork();
    let answer: MembershipOutcome = { applied: true };
    const leader = leaderSide(async () => answer);
    const asker: Transport = member(network, A, [B]);
    member(network, B, [A], leader.handler);
    expect(await asker.requestMembershipChange(B, ADD, { timeoutMs: 1000 })).toEqual({ applied: true });
    answer = NOT_CAUGHT_UP;
    expect(await asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 1000 })).toEqual(NOT_CAUGHT_UP);
    expect(leader.calls.map(({ from, change }) => ({ from, change }))).toEqual([
      { from: A, change: ADD },
      { from: A, change: PROMOTE },
    ]);
  });

  it('is refused (nothing happened) by a member with no handler, one that does not know the asker, or for an unknown peer', async () => {
    const network = new MemoryNetwork();
    const leader = leaderSide();
    const asker = member(network, A, [B, C]);
    member(network, B, [A]);
    member(network, C, [], leader.handler);
    await expect(asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 1000 })).rejects.toBeInstanceOf(PeerRequestRefusedError);
    await expect(asker.requestMembershipChange(C, PROMOTE, { timeoutMs: 1000 })).rejects.toBeInstanceOf(PeerRequestRefusedError);
    await expect(asker.requestMembershipChange(nodeId('dddddddddddddddd'), PROMOTE, { timeoutMs: 1000 })).rejects.toBeInstanceOf(PeerRequestRefusedError);
    expect(leader.calls).toEqual([]);
  });

  it('an unreachable member is an unknown outcome; so are a deadline passing and a failing handler', async () => {
    const network = new MemoryNetwork();
    const asker = member(network, A, [B, C]);
    const hung = leaderSide(hangs);
    member(network, B, [A], hung.handler);
    member(network, C, [A], async () => Promise.reject(new Error('broken')));
    network.isolate(A);
    await expect(asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 1000 })).rejects.toBeInstanceOf(PeerRequestFailedError);
    network.heal();
    await expect(asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 1000 })).resolves.toEqual({ applied: false, code: 'Timeout', message: 'gave up' });
    expect(hung.calls[0].signal.aborted).toBe(true);
    await expect(asker.requestMembershipChange(C, PROMOTE, { timeoutMs: 1000 })).rejects.toBeInstanceOf(PeerRequestFailedError);
  });

  it('abandons the request when the caller gives up', async () => {
    const network = new MemoryNetwork();
    const asker = member(network, A, [B]);
    const held = gate<MembershipOutcome>();
    const leader = leaderSide(() => held.promise);
    member(network, B, [A], leader.handler);
    const controller = new AbortController();
    const asked = asker.requestMembershipChange(B, PROMOTE, { timeoutMs: 5000, signal: controller.signal });
    await waitFor(() => leader.calls.length === 1, 'the request reached the leader');
    controller.abort();
    await expect(asked).rejects.toBeInstanceOf(PeerRequestFailedError);
    expect(leader.calls[0].signal.aborted).toBe(true);
    held.open({ applied: true });
  });
});
