import Fastify, { type FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { request as httpRequest } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../cluster/local-cluster.js';
import { makeMessage, nodeId, type Message, type NodeId } from '../../../src/raft/index.js';
import { encodeMessages } from '../../../src/transport/codec.js';
import { encodeFrame } from '../../../src/transport/frames.js';
import { HEADER_CLUSTER, HEADER_FROM, HEADER_TO, MEMBERSHIP_PATH, MESSAGES_PATH, PEER_CONTENT_TYPE, encodeMembershipRequest } from '../../../src/transport/peer-protocol.js';
import type { MembershipChange } from '../../../src/transport/transport.js';
import { peerRoutes } from '../../../src/transport/peer-routes.js';
import { replayable } from '../../support/hostile/fast-check-options.js';
import { startListeningMember, type ListeningMember } from '../../support/hostile/listening-member.js';
import { memberState, waitUntilSettled, type MemberState } from '../../support/hostile/member-state.js';
import { hostilePeerRequest, staleMessages, validMembershipChange, type PeerExpected, type PeerRequest } from '../../support/hostile/peer-requests.js';

// Hostile requests to the peer listener: refused with their 4xx and {"error":{code,message}}
// before anything reaches the Raft core. First against the routes alone (a recording
// receiver: nothing may be delivered), then over real sockets against a running member
// (its term, log, commit and store must not move).

const TOKEN = 'test-cluster';
const A = nodeId('aaaaaaaaaaaaaaaa');
const B = nodeId('bbbbbbbbbbbbbbbb');
const C = nodeId('cccccccccccccccc');

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

function expectRefusal(answer: Answer, expected: PeerExpected, what: string): void {
  expect(answer.status, `${what}: ${answer.body}`).toBe(expected.status);
  expect(answer.contentType, what).toMatch(/^application\/json/);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  expect(Object.keys(body), what).toEqual(['error']);
  const error = body.error as Record<string, unknown>;
  expect(Object.keys(error).sort(), what).toEqual(['code', 'message']);
  expect(error.code, `${what}: ${String(error.message)}`).toBe(expected.code);
  expect(typeof error.message === 'string' && error.message.length > 0, what).toBe(true);
}

describe('peer routes under hostile requests', () => {
  let server: FastifyInstance;
  let delivered: Message[][];
  let snapshots: Message[];
  let membershipChanges: MembershipChange[];
  const setup = { selfId: B, sender: A, clusterToken: TOKEN, maxBatchBytes: 16 * 1024 };

  beforeEach(async () => {
    delivered = [];
    snapshots = [];
    membershipChanges = [];
    server = Fastify({ logger: false });
    await server.register(peerRoutes, {
      selfId: B,
      clusterToken: TOKEN,
      // B itself is a member too, as in a real member's registry: the routes must still refuse it as a sender.
      isKnownPeer: (id) => id === A || id === C || id === B,
      onMessages: (messages) => void delivered.push([...messages]),
      onSnapshot: async (message, body) => {
        for await (const chunk of body) void chunk;
        snapshots.push(message);
      },
      maxBatchBytes: setup.maxBatchBytes,
      maxSnapshotBytes: 64 * 1024,
      onMembershipChange: async (_from, change) => {
        membershipChanges.push(change);
        return { applied: true };
      },
    });
  });
  afterEach(async () => {
    await server.close();
  });

  const send = async (r: PeerRequest): Promise<Answer> => {
    const response = await server.inject({ method: r.method, url: r.url, headers: r.headers, payload: r.payload });
    return { status: response.statusCode, contentType: String(response.headers['content-type']), body: response.body };
  };
  const post = (messages: Message[], from: NodeId = A) =>
    send({ method: 'POST', url: MESSAGES_PATH, headers: { 'content-type': PEER_CONTENT_TYPE, [HEADER_CLUSTER]: TOKEN, [HEADER_FROM]: from, [HEADER_TO]: B }, payload: encodeFrame(encodeMessages(messages)) });

  it('refuses every hostile request with its 4xx and error body, and delivers nothing (property)', async () => {
    await fc.assert(
      fc.asyncProperty(hostilePeerRequest(setup), async (request) => {
        const answer = await send(request);
        expectRefusal(answer, request.expect, `${request.ingredient} (${request.method} ${request.url})`);
        expect(delivered, request.ingredient).toEqual([]);
        expect(snapshots, request.ingredient).toEqual([]);
        expect(membershipChanges, request.ingredient).toEqual([]);
      }),
      replayable(400),
    );
  });

  it('delivers the valid batches the hostile ones are made from (the generators are not refused for nothing)', async () => {
    const batch = [makeMessage({ type: 'heartbeat', from: A, to: B, term: 3 }), makeMessage({ type: 'prop', from: A, to: B, entries: [{ term: 0, index: 0, type: 'normal', data: new Uint8Array([1]) }] })];
    expect((await post(batch)).status).toBe(204);
    expect(delivered).toEqual([batch]);
  });

  it('hands valid membership requests, as the hostile ones are made from, to the handler (property)', async () => {
    await fc.assert(
      fc.asyncProperty(validMembershipChange, fc.integer({ min: 1, max: 60_000 }), async (change, timeoutMs) => {
        membershipChanges = [];
        const headers = { 'content-type': PEER_CONTENT_TYPE, [HEADER_CLUSTER]: TOKEN, [HEADER_FROM]: A, [HEADER_TO]: B };
        const answer = await send({ method: 'POST', url: MEMBERSHIP_PATH, headers, payload: Buffer.from(encodeMembershipRequest(change, timeoutMs)) });
        expect(answer.status, answer.body).toBe(200);
        expect(JSON.parse(answer.body)).toEqual({ applied: true });
        expect(membershipChanges).toEqual([change]);
      }),
      replayable(50),
    );
  });

  // ---- regressions: each was delivered to the core (or answered outside the API shape) before the fix ----

  it('refuses a request claiming to come from the receiver itself (was delivered; the core asserts it never answers itself)', async () => {
    expectRefusal(await post([makeMessage({ type: 'heartbeat', from: B, to: B, term: 9 })], B), { status: 403, code: 'PermissionDenied' }, 'from self');
    expect(delivered).toEqual([]);
  });

  it('refuses a term-0 message that carries a term, a forwarded request with one, and an empty proposal (were delivered)', async () => {
    const cases: [string, Message][] = [
      ['term-0 app (a follower would take the sender as its leader)', makeMessage({ type: 'app', from: A, to: B, term: 0, index: 1 })],
      ['prop with a term (the leader would adopt it and step down)', makeMessage({ type: 'prop', from: A, to: B, term: 50, entries: [{ term: 0, index: 0, type: 'normal', data: new Uint8Array([1]) }] })],
      ['prop without entries (the core asserts a proposal has some)', makeMessage({ type: 'prop', from: A, to: B })],
    ];
    for (const [what, message] of cases) expectRefusal(await post([message]), { status: 400, code: 'InvalidArgument' }, what);
    expect(delivered).toEqual([]);
  });

  it('delivers a forwarded leader transfer whose from is its target, another member (was refused: from differed from the sender)', async () => {
    const transfer = makeMessage({ type: 'transferLeader', from: C, to: B });
    expect((await post([transfer])).status).toBe(204);
    expect(delivered).toEqual([[transfer]]);
    expectRefusal(await post([makeMessage({ type: 'transferLeader', from: nodeId('dddddddddddddddd'), to: B })]), { status: 400, code: 'InvalidArgument' }, 'transfer to a stranger');
    expectRefusal(await post([makeMessage({ type: 'transferLeader', from: B, to: B })]), { status: 400, code: 'InvalidArgument' }, 'transfer to the receiver');
    expect(delivered).toHaveLength(1);
  });

  it('answers an unknown path or method in the error shape (was fastify 404 {message,error,statusCode})', async () => {
    const headers = { 'content-type': PEER_CONTENT_TYPE, [HEADER_CLUSTER]: TOKEN, [HEADER_FROM]: A, [HEADER_TO]: B };
    expectRefusal(await send({ method: 'GET', url: MESSAGES_PATH, headers, payload: Buffer.alloc(0) }), { status: 400, code: 'InvalidArgument' }, 'GET messages');
    expectRefusal(await send({ method: 'POST', url: '/raft/other', headers, payload: Buffer.alloc(0) }), { status: 400, code: 'InvalidArgument' }, 'other path');
    expectRefusal(await send({ method: 'POST', url: '/raft/other', headers: {}, payload: Buffer.alloc(0) }), { status: 403, code: 'PermissionDenied' }, 'stranger');
  });
});

describe("a running member's peer listener over sockets", () => {
  let running: ListeningMember;
  let learner: NodeId;
  let settled: MemberState;
  const app = () => running.member.clientApp;

  async function send(r: PeerRequest): Promise<Answer> {
    const response = await httpRequest(`${running.peerUrl}${r.url}`, { method: r.method, headers: r.headers, body: r.payload });
    return { status: response.statusCode, contentType: String(response.headers['content-type'] ?? ''), body: await response.body.text() };
  }
  const envelope = (from: NodeId) => ({ 'content-type': PEER_CONTENT_TYPE, [HEADER_CLUSTER]: running.clusterToken, [HEADER_FROM]: from, [HEADER_TO]: running.member.id });
  const post = (messages: Message[], from: NodeId) => send({ method: 'POST', url: MESSAGES_PATH, headers: envelope(from), payload: encodeFrame(encodeMessages(messages)) });

  beforeAll(async () => {
    running = await startListeningMember();
    await waitUntilSettled(app());
    // A learner that never answers (nothing listens on its port) is a known sender that
    // cannot change the quorum of this one-voter cluster.
    const added = await app().inject({ method: 'POST', url: '/v1/members', payload: { peerUrls: [`http://127.0.0.1:${await freePort()}`], learner: true } });
    expect(added.statusCode).toBe(200);
    learner = nodeId(added.json().member.id as string);
    expect((await app().inject({ method: 'PUT', url: '/v1/kv/k', payload: 'v' })).statusCode).toBe(200);
    await waitUntilSettled(app());
    settled = await memberState(app());
    expect(settled.term).toBeGreaterThanOrEqual(2); // so that term 1 is stale
  });
  afterAll(async () => {
    await running?.close();
  });

  async function expectUnchangedAndAlive(): Promise<void> {
    expect(await memberState(app())).toEqual(settled);
    const put = await app().inject({ method: 'PUT', url: '/v1/kv/alive', payload: 'yes' });
    expect(put.statusCode).toBe(200);
    await app().inject({ method: 'DELETE', url: '/v1/kv/alive' });
    settled = await memberState(app());
  }

  it('refuses every hostile request with its 4xx; the term, log, commit and store do not move (property)', async () => {
    await fc.assert(
      fc.asyncProperty(hostilePeerRequest({ selfId: running.member.id, sender: learner, clusterToken: running.clusterToken }), async (request) => {
        const answer = await send(request);
        expectRefusal(answer, request.expect, `${request.ingredient} (${request.method} ${request.url})`);
        expect(await memberState(app()), request.ingredient).toEqual(settled);
      }),
      replayable(100),
    );
    await expectUnchangedAndAlive();
  });

  it('takes well-formed messages with stale terms from a member and changes nothing (property)', async () => {
    await fc.assert(
      fc.asyncProperty(staleMessages(learner, running.member.id, settled.term), async (messages) => {
        expect((await post(messages, learner)).status).toBe(204);
        expect(await memberState(app()), messages.map((m) => `${m.type}@${m.term}`).join(',')).toEqual(settled);
      }),
      replayable(40),
    );
    await expectUnchangedAndAlive();
  });

  // ---- regressions over a socket: before the fixes in peer-routes.ts these reached the core ----

  it('a heartbeat forged as from the member itself is refused (was: 500 from a core assertion, the term moved, the leader followed itself)', async () => {
    const self = running.member.id;
    expectRefusal(await post([makeMessage({ type: 'heartbeat', from: self, to: self, term: settled.term + 5, commit: 1 })], self), { status: 403, code: 'PermissionDenied' }, 'from self');
    await expectUnchangedAndAlive();
  });

  it('a proposal with a term is refused (was: the leader adopted the term and stepped down)', async () => {
    const prop = makeMessage({ type: 'prop', from: learner, to: running.member.id, term: settled.term + 50, entries: [{ term: 0, index: 0, type: 'normal', data: new Uint8Array(0) }] });
    expectRefusal(await post([prop], learner), { status: 400, code: 'InvalidArgument' }, 'prop with a term');
    await expectUnchangedAndAlive();
  });

  it('a forwarded proposal that is not a cairn command is committed and skipped; the member goes on (was: the Raft loop stopped for good)', async () => {
    const garbage = makeMessage({ type: 'prop', from: learner, to: running.member.id, logTerm: settled.term, entries: [{ term: 0, index: 0, type: 'normal', data: Uint8Array.of(0xc1, 0xff, 0x00) }] });
    expect((await post([garbage], learner)).status).toBe(204);
    // It takes a log index but no revision: wait until it is applied, then the member must still serve writes.
    const commitBefore = settled.appliedIndex;
    const deadline = Date.now() + 5000;
    while ((await memberState(app())).appliedIndex <= commitBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const after = await memberState(app());
    expect(after.appliedIndex).toBeGreaterThan(commitBefore);
    expect(after.revision).toBe(settled.revision);
    expect((await app().inject({ url: '/readyz' })).statusCode).toBe(200);
    settled = after;
    await expectUnchangedAndAlive();
  });

  it('a forwarded conf change that cannot be decoded is refused by the leader and never committed', async () => {
    const garbage = makeMessage({ type: 'prop', from: learner, to: running.member.id, logTerm: settled.term, entries: [{ term: 0, index: 0, type: 'confChange', data: new TextEncoder().encode('{"type":"addNode"') }] });
    expect((await post([garbage], learner)).status).toBe(204);
    await expectUnchangedAndAlive();
    expect((await app().inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('a proposal without entries is refused (was: 500 from the core assertion "empty proposal")', async () => {
    expectRefusal(await post([makeMessage({ type: 'prop', from: learner, to: running.member.id })], learner), { status: 400, code: 'InvalidArgument' }, 'empty prop');
    await expectUnchangedAndAlive();
  });
});
